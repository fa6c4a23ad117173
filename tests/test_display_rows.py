"""The live display's rows, rendered at fixed widths on a fake clock: fields, fit, order."""

from __future__ import annotations

import asyncio
import io
import logging

import orjson
import pyte
import pytest
from rich.console import Console

from harvester.display import STEPS, LiveDisplay, Rows, choose
from harvester.logs import setup_logging
from harvester.progress import Progress, ProgressMode, Reporter


def _announced() -> dict[str, object]:
    return {"limit": 30, "window": 10.0, "kind": "fixed", "requests": 5, "ceiling": None}


def _sources() -> list[Progress]:
    """NOBB 62 % of its planned total, DBK a quarter of its time range, 60 s into the run."""
    nobb = Progress(
        source="nobb",
        started=100.0,
        records=123_456,
        expected=200_000,
        bytes_in=45_000_000,
        requests=400,
        throttled=2,
        retries=13,
        rate=_announced,
    )
    dbk = Progress(source="dbk", started=100.0, records=9_876, span_total=1000, span_done=250,
                   bytes_in=30_000_000, requests=120, rate=_announced)  # fmt: skip
    return [nobb, dbk]


def _render(items: list[Progress], width: int) -> list[str]:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    console.print(Rows(items, clock=lambda: 160.0))
    *rows, cursor_line = out.getvalue().splitlines()
    assert cursor_line == ""  # the blank line the cursor waits on
    return rows


def test_wide_rows_show_every_field_aligned() -> None:
    """At 200 columns: bar, %, records, MB/s, req/s, policy, 429s, retries, ETA, in columns."""
    assert _render(_sources(), 200) == [
        "nobb  ━━━━━━━━━━━━          62%  123,456 records  0.8 MB/s  6.7 req/s  30/10s fixed"
        "  429s 2  retries 13  ETA 0m37s",
        "dbk   ━━━━━                 25%    9,876 records  0.5 MB/s  2.0 req/s  30/10s fixed"
        "  429s 0  retries 0   ETA 3m00s",
    ]


def test_at_80_columns_fields_are_shortened_not_wrapped() -> None:
    """At 80: MB/s gone, one space between fields, a 10-cell bar, "rec", "/s"; nothing lost."""
    assert _render(_sources(), 80) == [
        "nobb ━━━━━━     62% 123,456 rec 6.7/s 30/10s fixed 429s 2 retries 13 ETA 0m37s",
        "dbk  ━━╸        25%   9,876 rec 2.0/s 30/10s fixed 429s 0 retries 0  ETA 3m00s",
    ]


def test_no_width_wraps_a_row_and_fields_go_in_the_fixed_order() -> None:
    """From 200 columns down to 20, a row per source, none wider than the screen, and a field
    once dropped never comes back at a narrower width: MB/s first, the policy last."""
    labels = {"mbs": "MB/s", "bar": "━", "retries": "retries", "429s": "429s", "eta": "m",
              "policy": "30/10s"}  # fmt: skip
    dropped_at: dict[str, int] = {}
    for width in range(200, 19, -1):
        rows = _render(_sources(), width)
        assert len(rows) == 2 and all(len(row) <= width for row in rows), (width, rows)
        for key, label in labels.items():
            if label not in rows[0]:
                dropped_at.setdefault(key, width)
            else:
                assert key not in dropped_at, (key, width, rows)
    order = sorted(dropped_at, key=lambda k: -dropped_at[k])
    assert order == [k for k in STEPS if k in labels], dropped_at
    assert _render(_sources(), 20)[0] == "nobb 62% 123,456 rec"


def test_a_finished_row_is_its_summary_and_its_rates_stop() -> None:
    """A finished source's row is its summary (cut with … where too wide); the other runs on."""
    nobb, dbk = _sources()
    nobb.finish("nobb dump: complete, 200,000 records in 2 shards, 61.0s -> /out/nobb/X", ok=True,
                now=161.0)  # fmt: skip
    rows = _render([nobb, dbk], 60)
    assert rows[0] == "nobb dump: complete, 200,000 records in 2 shards, 61.0s -> …"
    assert rows[1].startswith("dbk ") and "25%" in rows[1]
    assert nobb.line(now=161.0) == nobb.line(now=999.0)  # rates frozen at the end
    assert nobb.eta(now=999.0) is None


def test_a_draining_row_says_it_is_stopping() -> None:
    """After Ctrl-C, while a source drains, its row says so where the ETA was."""
    nobb, dbk = _sources()
    nobb.stopping = True
    rows = _render([nobb, dbk], 80)
    assert rows[0].endswith("retries 13 stopping…") and rows[1].endswith("ETA 3m00s"), rows


def test_rows_before_anything_is_known_leave_the_unknown_out() -> None:
    """Before the plan and the first answer: no bar, no %, no policy, no ETA; just counts."""
    rows = _render([Progress(source="nobb", started=100.0), Progress(source="dbk", started=100.0)],
                   80)  # fmt: skip
    assert rows == [
        "nobb  0 records  0.0 MB/s  0.0 req/s  429s 0  retries 0",
        "dbk   0 records  0.0 MB/s  0.0 req/s  429s 0  retries 0",
    ]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_choose_keeps_the_live_display_to_a_terminal_with_text_logs() -> None:
    """A terminal with text logs gets the live display; JSON logs, a pipe or never do not."""
    items = _sources()
    assert isinstance(choose(items, mode="auto", stream=_Tty()), LiveDisplay)
    assert isinstance(choose(items, mode="always", stream=_Tty()), LiveDisplay)
    cases: list[tuple[ProgressMode, str, io.StringIO, bool]] = [
        ("auto", "json", _Tty(), False), ("always", "json", _Tty(), True),
        ("never", "text", _Tty(), False), ("auto", "text", io.StringIO(), False),
        ("always", "text", io.StringIO(), True),
    ]  # fmt: skip
    for mode, fmt, stream, shown in cases:
        picked = choose(items, mode=mode, log_format=fmt, stream=stream)
        assert isinstance(picked, Reporter) and picked.enabled is shown, (mode, fmt)


def _screen(text: str, width: int) -> tuple[list[str], int]:
    """The screen after ``text`` (each newline also returns, as on a tty), and the cursor line."""
    screen = pyte.Screen(width, 8)
    pyte.Stream(screen).feed(text.replace("\n", "\r\n"))
    return [line.rstrip() for line in screen.display], screen.cursor.y


async def test_log_lines_print_above_the_rows_and_the_rows_are_erased_at_the_end() -> None:
    """While the display is on, log lines print above the rows at the next frame; closing prints
    those still waiting and erases the rows."""
    out = _Tty()
    console = Console(file=out, width=100, force_terminal=True, color_system=None)
    root = logging.getLogger("harvester")
    saved = root.handlers[:], root.propagate, root.level
    setup_logging()
    try:
        async with LiveDisplay(_sources(), console=console, interval=0):
            await asyncio.sleep(0)  # one turn of the loop: the first frame is drawn
            logging.getLogger("harvester.run").warning("nobb: something to say")
            assert "something" not in out.getvalue()  # printed with the next frame
            await asyncio.sleep(0)  # the next frame
            during, _ = _screen(out.getvalue(), 100)
            logging.getLogger("harvester.run").error("nobb: the last word")
    finally:
        root.handlers[:], root.propagate = saved[0], saved[1]
        root.setLevel(saved[2])
    assert during[0] == "WARNING harvester.run: nobb: something to say"
    assert during[1].startswith("nobb ") and during[2].startswith("dbk ") and during[3] == ""
    after, cursor = _screen(out.getvalue(), 100)
    said = [
        "WARNING harvester.run: nobb: something to say",
        "ERROR harvester.run: nobb: the last word",
    ]
    assert after == said + [""] * 6 and cursor == 2  # what waited is printed, the rows erased


async def test_an_echoed_ctrl_c_never_leaves_a_row_behind() -> None:
    """The terminal echoes ^C where the cursor is: after rows filling the width it would wrap
    and leave a row behind; under them, on the cursor's blank line, it is erased with them."""
    width = max(len(row) for row in _render(_sources(), 80))
    assert len(_render(_sources(), width)[-1]) == width  # the last row fills the terminal
    out = _Tty()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    async with LiveDisplay(_sources(), console=console, interval=3600, clock=lambda: 160.0):
        await asyncio.sleep(0)  # one turn of the loop: the first frame is drawn
        drawn = out.getvalue()
    screen, _ = _screen(drawn, width)
    assert screen[1].startswith("dbk ") and len(screen[1]) == width
    screen, cursor = _screen(drawn + "^C" + out.getvalue()[len(drawn) :], width)
    assert screen == [""] * 8 and cursor == 0


def test_plain_reporter_json_is_one_object_per_running_source() -> None:
    """With JSON logs the plain reporter's lines are JSON objects, finished sources left out."""
    nobb, dbk = _sources()
    dbk.finish("dbk dump: complete", ok=True, now=150.0)
    text = Reporter([nobb, dbk], mode="always", log_format="json").render()
    (line,) = text.splitlines()
    data = orjson.loads(line)
    assert data["source"] == "nobb" and data["logger"] == "harvester.progress"
    assert data["message"].startswith("nobb: 123,456 records (62%), partitions 0/?")


async def test_a_display_that_fails_to_draw_steps_aside_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug in drawing a row stops the display, not the run: logged once, the rows erased."""

    def broken() -> dict[str, object]:
        raise RuntimeError("no report")

    out = _Tty()
    console = Console(file=out, width=100, force_terminal=True, color_system=None)
    with caplog.at_level(logging.ERROR, logger="harvester.display"):
        async with LiveDisplay([Progress(source="nobb", rate=broken)], console=console,
                               interval=3600):  # fmt: skip
            await asyncio.sleep(0)  # one turn of the loop: the first frame is drawn, or not
    (record,) = caplog.records
    assert record.getMessage() == "the live display failed; the run goes on without it"
    assert "nobb " not in out.getvalue()
