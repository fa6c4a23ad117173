"""The live display as a person sees it: `harvester dump` in a pseudo-terminal, read off a screen.

A simulator announcing 30 requests per 3 s serves both APIs; `harvester dump nobb dbk` runs in a
pseudo-terminal (pexpect) whose output an emulated terminal (pyte) renders. A frame of the display
is read whole: rich starts each redraw by erasing the rows (``NEXT``), so the screen fed up to the
next ``NEXT`` shows exactly the frame before it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pyte
import pytest

from harvester.store.checkpoint import Checkpoint
from tests.harness import simulate

#: What rich writes before redrawing the two rows and the blank line under them (where the
#: cursor waits): back to the first, erasing all three.
NEXT = "\r\x1b[2K\x1b[1A\x1b[2K\x1b[1A\x1b[2K"
HEIGHT = 30
TIMEOUT = 90
#: The simulator: 30 requests per 3 s, announced by IETF RateLimit-Policy (the window stated,
#: so the policy reads 30/3s from the first answer); each source needs more than 30 requests,
#: so both run for more than one window.
SIM = ["--rate-limit", "30", "--rate-window", "3", "--rate-headers", "ietf",
       "--nobb-items", "2000", "--dbk-products", "1500", "--dbk-max-products", "100",
       "--latency-ms", "30"]  # fmt: skip
CONFIG = """[output]
dir = "{out}"
[nobb]
base_url = "{url}"
username = "harvester"
password = "harvester"
page_size = 50
[dbk]
base_url = "{url}"
username = "harvester"
password = "harvester"
max_products_per_response = 100
"""


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    """One simulator for the module's dumps (each dump starts a new run directory)."""
    sim, url = simulate(*SIM)
    with sim:
        try:
            yield url
        finally:
            sim.terminate()


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    """The test's terminals; a command still running when the test ends (it failed) is killed."""
    made: list[Terminal] = []
    yield made
    for term in made:
        if term.child.isalive():
            term.child.terminate(force=True)


class Terminal:
    """``harvester dump nobb dbk`` in a pseudo-terminal ``cols`` wide, and the screen it draws."""

    def __init__(self, tmp: Path, url: str, cols: int) -> None:
        self.out = tmp / "out"
        cfg = tmp / "c.toml"
        cfg.write_text(CONFIG.format(out=self.out, url=url))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env["TERM"] = "xterm-256color"
        self.screen = pyte.Screen(cols, HEIGHT)
        self._stream = pyte.Stream(self.screen)
        self.child = pexpect.spawn(
            sys.executable, ["-m", "harvester", "dump", "nobb", "dbk", "--config", str(cfg)],
            dimensions=(HEIGHT, cols), env=env, encoding="utf-8", timeout=TIMEOUT,
        )  # fmt: skip
        self._log = (tmp / "pty.log").open("w")  # what was drawn, to read after a failure
        self.child.logfile_read = self._log

    def _take(self) -> None:
        before, after = self.child.before, self.child.after
        self._stream.feed(before if isinstance(before, str) else "")
        self._stream.feed(after if isinstance(after, str) else "")

    def frame_with(self, pattern: str) -> tuple[list[str], int]:
        """The screen showing the first frame whose text matches ``pattern`` (a regex), and the
        line the cursor is on."""
        self.child.expect(pattern)
        self._take()
        self.child.expect_exact(NEXT)  # the frame is whole: the next one begins
        self._stream.feed(str(self.child.before))
        lines, cursor = [line.rstrip() for line in self.screen.display], self.screen.cursor.y
        self._stream.feed(NEXT)
        return lines, cursor

    def finish(self) -> tuple[list[str], int]:
        """The screen once the command has exited, and its exit code."""
        self.child.expect(pexpect.EOF)
        self._take()
        self.child.close()
        self._log.close()
        assert self.child.exitstatus is not None
        return [line.rstrip() for line in self.screen.display], self.child.exitstatus


def _rows(lines: list[str]) -> tuple[int, str, str]:
    """The index of the nobb row and both rows; each source has exactly one."""
    nobb = [i for i, line in enumerate(lines) if line.startswith("nobb ")]
    dbk = [i for i, line in enumerate(lines) if line.startswith("dbk ")]
    assert len(nobb) == 1 and len(dbk) == 1, lines
    return nobb[0], lines[nobb[0]], lines[dbk[0]]


#: A frame where both rows run and show the policy in force, and NOBB its share (its plan made);
#: ANSI styles stand between the fields.
BOTH = r"nobb\b[^\n]*\d%[^\n]*30/3s fixed[^\n]*\n[^\n]*dbk\b[^\n]*30/3s fixed"


@pytest.mark.parametrize("cols", [80, 200])
def test_one_row_per_source_fits_the_width_and_ends_in_summaries(
    tmp_path: Path, sim_url: str, terminals: list[Terminal], cols: int
) -> None:
    """Rows fit 80 and 200 columns unwrapped, with NOBB's %, the policy, then each summary."""
    old = tmp_path / "out" / "nobb" / "20260101T000000Z"
    old.mkdir(parents=True)
    Checkpoint(started="2026-01-01T00:00:00+00:00", mode="dump").save(old)  # an unfinished run
    term = Terminal(tmp_path, sim_url, cols)
    terminals.append(term)
    lines, cursor = term.frame_with(BOTH)
    at, nobb, dbk = _rows(lines)
    # Two rows, one under the other, the cursor on the blank line under them: nothing wrapped.
    assert lines[at + 1] == dbk and cursor == at + 2, lines
    assert all(line == "" for line in lines[at + 2 :]), lines
    assert re.search(r" \d{1,3}% ", nobb) and re.search(r" \d{1,3}% ", dbk), lines
    for row in (nobb, dbk):
        assert "429s 0" in row and "retries 0" in row, row
        assert ("MB/s" in row) == (cols == 200), row  # the first field dropped when narrow
    # The warning about the unfinished run printed above the rows, not through them.
    warned = [i for i, line in enumerate(lines) if line.startswith("WARNING harvester.run:")]
    assert len(warned) == 1 and warned[0] < at, lines
    screen, code = term.finish()
    assert code == 0, screen
    summaries = [line for line in screen if re.match(r"(nobb|dbk) dump: ", line)]
    assert [s.split(",")[0] for s in summaries] == ["nobb dump: complete", "dbk dump: complete"]
    assert not any("req/s" in line or "━" in line for line in screen), screen


def test_ctrl_c_replaces_the_rows_with_the_interrupted_summaries(
    tmp_path: Path, sim_url: str, terminals: list[Terminal]
) -> None:
    """Ctrl-C mid-run at 80 columns (the terminal echoes ^C under the rows): the rows give way
    to each source's interrupted summary, nothing else on the screen, exit 130."""
    term = Terminal(tmp_path, sim_url, 80)
    terminals.append(term)
    _rows(term.frame_with(r"nobb\b[^\n]*\d%[^\n]*\n[^\n]*dbk\b[^\n]*\d%")[0])
    term.child.sendintr()
    screen, code = term.finish()
    assert code == 130, screen
    said = [f"error: {name}: interrupted; what was whole is in {next((term.out / name).glob('2*'))}"
            for name in ("nobb", "dbk")]  # fmt: skip
    wrapped = [line[i : i + 80].rstrip() for line in said for i in range(0, len(line), 80)]
    assert [line for line in screen if line] == wrapped, screen
