"""The live display on a terminal: one row per source, redrawn in place by ``rich``.

A running source's row shows a bar and a percentage where its end is known (NOBB: records of
the planned ``x-totalHits``; DBK: the share of its time range that finished windows cover),
then records, MB/s, req/s, the rate policy in force (``30/10s fixed``, ``learned 20/2s``,
``none announced``), 429s, retries and an ETA. A finished source's row is its closing summary.

Rows never wrap: where they do not fit the terminal's width, fields are shortened or dropped in
the fixed order of ``STEPS``, the same for every row, so the columns stay aligned; what still
does not fit is cut with an ellipsis. Log lines print above the rows (``logs.set_live``). The
rows are transient: when the display closes they are erased, and the run layer prints the
closing summaries in their place (after Ctrl-C too: the interrupted ones).

The cursor waits on a blank line under the rows, so what the terminal itself echoes (``^C``)
lands there instead of after a full-width row, where it would wrap and leave a row behind.

``choose`` picks the reporter: this display on a terminal with text logs, else the plain
``progress.Reporter`` (never mixed with ``--log-format json``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from harvester.logs import set_live
from harvester.progress import Progress, ProgressMode, Reporter, duration

__all__ = ["STEPS", "LiveDisplay", "Rows", "choose"]

#: How rows are made narrower, one step more at a time until they fit: drop MB/s, one space
#: between fields instead of two, a 10-cell bar instead of 20, "rec" for "records", the policy
#: without its ceiling, "/s" for "req/s", the ETA without its label, then drop the bar,
#: retries, req/s, 429s, the ETA and the policy.
STEPS = (
    "mbs",
    "gap",
    "bar10",
    "rec",
    "ceiling",
    "per_s",
    "eta_label",
    "bar",
    "retries",
    "reqs",
    "429s",
    "eta",
    "policy",
)
BAR = 20
#: Seconds between redraws.
REFRESH = 0.25
log = logging.getLogger("harvester.display")

Cell = tuple[str, str, str]  # (column key, text, style)


def _cells(p: Progress, now: float, steps: set[str]) -> list[Cell]:
    """One running source's fields, narrowed by ``steps``; the bar is drawn later."""
    elapsed = p.elapsed(now)
    done = p.fraction()
    records = f"{p.before + p.records:,} {'rec' if 'rec' in steps else 'records'}"
    cells: list[Cell] = [
        ("name", p.source, "bold"),
        ("bar", "", ""),
        ("pct", f"{done:.0%}" if done is not None else "", "bold"),
        ("records", records, ""),
        ("mbs", f"{p.bytes_in / elapsed / 1e6:.1f} MB/s", ""),
        ("reqs", f"{p.requests / elapsed:.1f}{'/s' if 'per_s' in steps else ' req/s'}", ""),
        ("policy", p.policy(short="ceiling" in steps), "cyan"),
        ("429s", f"429s {p.throttled}", "red" if p.throttled else ""),
        ("retries", f"retries {p.retries}", "yellow" if p.retries else ""),
    ]
    failed = f"FAILED {p.partitions_failed}" if p.partitions_failed else ""
    cells.append(("failed", failed, "bold red"))
    left = p.eta(now)
    label = "" if "eta_label" in steps else "ETA "
    if p.stopping:  # Ctrl-C: draining, the summary comes next
        cells.append(("eta", "stopping…", "bold yellow"))
    else:
        cells.append(("eta", f"{label}{duration(left)}" if left is not None else "", ""))
    return [c for c in cells if c[0] not in steps]


def _bar(console: Console, options: ConsoleOptions, done: float | None, width: int) -> Text:
    """Rich's progress bar as ``width`` cells of text (blank where the share is unknown)."""
    if done is None:
        return Text(" " * width)
    bar = ProgressBar(total=1.0, completed=done, width=width)
    segments = console.render(bar, options.update(width=width))
    text = Text.assemble(*((s.text, s.style or "") for s in segments))
    text.truncate(width, pad=True)  # without colours rich leaves the bar's rest out
    return text


def _layout(rows: list[list[Cell]], bar: int, gap: int) -> tuple[list[str], dict[str, int]]:
    """The columns every row shares (those some row fills) and their widths."""
    keys = [key for key, _, _ in rows[0]]
    widths = {
        key: bar if key == "bar" else max(cell_len(row[i][1]) for row in rows)
        for i, key in enumerate(keys)
    }
    return [key for key in keys if widths[key]], widths


class Rows:
    """The rows of every source, laid out for the width they are rendered at."""

    def __init__(self, items: Sequence[Progress], clock: Callable[[], float] = time.monotonic):
        self._items = items
        self._clock = clock

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width, now = options.max_width, self._clock()
        running = [p for p in self._items if p.summary is None]
        made = iter(self._running(console, options, running, now))
        for p in self._items:
            if p.summary is None:
                line = next(made)
            else:
                line = Text(p.summary, style="green" if p.ok else "bold red")
            line.no_wrap = True
            line.truncate(width, overflow="ellipsis")
            yield line
        # The cursor waits on a blank line under the rows: what the terminal echoes there (^C,
        # keys typed) never wraps a row and is erased with the rows at the next frame.
        yield Text()

    def _running(
        self, console: Console, options: ConsoleOptions, items: list[Progress], now: float
    ) -> Iterable[Text]:
        if not items:
            return
        width = options.max_width
        shares = [p.fraction() for p in items]
        for n in range(len(STEPS) + 1):
            steps = set(STEPS[:n])
            rows = [_cells(p, now, steps) for p in items]
            known = any(s is not None for s in shares) and "bar" not in steps
            gap = 1 if "gap" in steps else 2
            keys, widths = _layout(rows, (BAR // 2 if "bar10" in steps else BAR) * known, gap)
            if sum(widths[k] for k in keys) + gap * (len(keys) - 1) <= width:
                break
        for done, row in zip(shares, rows, strict=True):
            line = Text()
            cells = {k: (t, s) for k, t, s in row}
            for i, key in enumerate(keys):
                if i:
                    line.append(" " * gap)
                if key == "bar":
                    line.append_text(_bar(console, options, done, widths[key]))
                    continue
                text, style = cells.get(key, ("", ""))
                pad = " " * (widths[key] - cell_len(text))
                right = key in ("pct", "records", "mbs", "reqs")
                line.append(pad + text if right else text + pad, style=style)
            line.rstrip()
            yield line


class LiveDisplay:
    """The rows on a terminal until closed; an async context manager, ``aclose`` idempotent.

    Redrawn every ``REFRESH`` seconds from the event loop (the counters are only touched there).
    Log lines (from any thread) wait for the next redraw and print above the rows all at once:
    a line each costs a redraw of the rows, which ``-v`` on a fast run would make a CPU's work.
    Closing prints the lines still waiting and erases the rows.
    """

    enabled = True

    def __init__(
        self,
        items: Sequence[Progress],
        *,
        console: Console,
        interval: float = REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._live = Live(
            Rows(items, clock),
            console=console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=True,
        )
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._open = False
        self._lines: deque[str] = deque()

    async def __aenter__(self) -> LiveDisplay:
        self._live.start()  # the first frame is drawn by _run
        self._open = True
        set_live(self._print)
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _print(self, line: str) -> None:
        self._lines.append(line)  # deque.append: safe from any thread

    def _draw(self) -> None:
        """Print the log lines waiting, the rows redrawn under them; else redraw the rows."""
        lines: list[str] = []
        with contextlib.suppress(IndexError):
            while True:
                lines.append(self._lines.popleft())
        if lines:
            self._live.console.print(Text("\n".join(lines)))
        else:
            self._live.refresh()

    async def aclose(self) -> None:
        """Stop redrawing and erase the rows; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._end()

    def _end(self) -> None:
        """Erase the rows and hand the terminal back (the final frame is blank: no redraw)."""
        if self._open:
            self._open = False
            set_live(None)
            self._live.update(Text(), refresh=False)
            if self._lines:
                self._live.console.print(Text("\n".join(self._lines)))
            self._live.stop()

    async def _run(self) -> None:
        while True:
            try:
                self._draw()
            except Exception:  # a bug here must not stop the harvest: report it, go on without
                self._end()
                log.exception("the live display failed; the run goes on without it")
                return
            await asyncio.sleep(self._interval)


def choose(
    items: Sequence[Progress],
    *,
    mode: ProgressMode,
    log_format: str = "text",
    stream: TextIO | None = None,
) -> LiveDisplay | Reporter:
    """The live display on a terminal (``auto`` or ``always``, text logs), else the plain
    reporter: a line every few seconds with ``always``, nothing with ``auto`` or ``never``."""
    stream = stream if stream is not None else sys.stderr
    if mode != "never" and log_format == "text":
        console = Console(file=stream, highlight=False)
        if console.is_terminal and not console.is_dumb_terminal:
            return LiveDisplay(items, console=console)
    return Reporter(items, mode=mode, stream=stream, log_format=log_format)
