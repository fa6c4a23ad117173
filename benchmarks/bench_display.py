"""The live display's drawing cost: one frame of two rows, and log lines printed above the rows
one at a time (each redraws the rows: rich's Live) against LiveDisplay's batches (the lines
waiting are printed at the next frame, the rows redrawn once).

python -m benchmarks.bench_display [LINES]

Output goes to an in-memory terminal (no I/O wait), so the figures are the CPU's work alone.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import time

from rich.console import Console
from rich.live import Live
from rich.text import Text

from harvester.display import LiveDisplay, Rows
from harvester.logs import setup_logging
from harvester.progress import Progress

LINE = "nobb partition start..2023-03-29 (asc) GET /api/v2/items ..2023-03-29: HTTP 200, 73 ms"
BATCH = 100  # lines a frame: 400 lines/s at 4 frames/s, a fast run under -v


def _items() -> list[Progress]:
    def report() -> dict[str, object]:
        return {"limit": 30, "window": 10.0, "kind": "fixed", "requests": 5, "ceiling": None}

    return [
        Progress(source="nobb", started=100.0, records=123_456, expected=200_000,
                 bytes_in=45_000_000, requests=400, throttled=2, retries=13, rate=report),
        Progress(source="dbk", started=100.0, records=9_876, span_total=1000, span_done=250,
                 bytes_in=30_000_000, requests=120, rate=report),
    ]  # fmt: skip


def _console(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=True, color_system="256")


def _frame_ms(width: int, frames: int = 500) -> float:
    console, rows = _console(width), Rows(_items(), clock=lambda: 160.0)
    t = time.perf_counter()
    for _ in range(frames):
        console.print(rows)
    return (time.perf_counter() - t) / frames * 1e3


def _one_at_a_time_ms(width: int, lines: int) -> float:
    console = _console(width)
    with Live(Rows(_items(), clock=lambda: 160.0), console=console, auto_refresh=False,
              transient=True):  # fmt: skip
        t = time.perf_counter()
        for _ in range(lines):
            console.print(Text(LINE))
        return (time.perf_counter() - t) / lines * 1e3


async def _batched_ms(width: int, lines: int) -> float:
    log = logging.getLogger("harvester.nobb")
    async with LiveDisplay(_items(), console=_console(width), interval=0, clock=lambda: 160.0):
        t = time.perf_counter()
        for i in range(lines):
            log.warning(LINE)
            if i % BATCH == BATCH - 1:
                await asyncio.sleep(0)  # the display's turn: one frame, the batch above it
        return (time.perf_counter() - t) / lines * 1e3


def main(lines: int = 2000) -> None:
    setup_logging()
    for width in (80, 200):
        one = _one_at_a_time_ms(width, lines)
        batched = asyncio.run(_batched_ms(width, lines))
        print(
            f"{width} columns: a frame {_frame_ms(width):.2f} ms; a log line {one:.2f} ms one at "
            f"a time, {batched:.2f} ms in batches of {BATCH} ({one / batched:.1f}x less)"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
