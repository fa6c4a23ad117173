"""Run progress: counters a source bumps, and a reporter that shows them.

``Progress`` is a plain bag of counters (no I/O, no tasks): records written, partitions done of
total, bytes received, requests, 429s, retries. ``Reporter`` renders every source's counters: on
a terminal as one live line rewritten in place, elsewhere (cron, CI) as a plain line every
``interval`` seconds. Nothing here ever sees a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import Literal, TextIO

from harvester.logs import set_live
from harvester.plural import counted

__all__ = ["Progress", "ProgressMode", "Reporter"]

ProgressMode = Literal["auto", "always", "never"]


@dataclass(slots=True)
class Progress:
    """Counters of one source's run; the source and the engine increment them."""

    source: str
    records: int = 0
    duplicates: int = 0
    partitions_done: int = 0
    partitions_total: int = 0
    partitions_failed: int = 0
    bytes_in: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    accepted: int = 0  #: 202 Accepted answers waited out (asked again, no retry spent)
    expected: int | None = None
    limit: str = ""
    started: float = field(default_factory=time.monotonic)

    def line(self, now: float | None = None) -> str:
        """One human line: records, partitions, MB/s, requests/s, 429s, retries, ETA."""
        elapsed = max(1e-6, (time.monotonic() if now is None else now) - self.started)
        parts = [
            f"{self.source}: {counted(self.records, 'record')}",
            f"partitions {self.partitions_done}/{self.partitions_total or '?'}",
            f"{self.bytes_in / elapsed / 1e6:.1f} MB/s",
            f"{self.requests / elapsed:.1f} req/s"
            + (f" (limit {self.limit})" if self.limit else ""),
            f"429s {self.throttled}",
            f"retries {self.retries}",
        ]
        if self.partitions_failed:
            parts.append(f"FAILED {self.partitions_failed}")
        if self.expected and self.records:
            left = max(0, self.expected - self.records) / (self.records / elapsed)
            parts.append(f"ETA {int(left // 60)}m{int(left % 60):02d}s")
        return ", ".join(parts)


class Reporter:
    """Shows progress lines until stopped; an async context manager with idempotent ``aclose``."""

    def __init__(
        self,
        items: list[Progress],
        *,
        mode: ProgressMode = "auto",
        stream: TextIO | None = None,
        interval: float | None = None,
    ) -> None:
        self._items = items
        self._stream = stream if stream is not None else sys.stderr
        tty = self._stream.isatty()
        self._enabled = mode == "always" or (mode == "auto" and tty)
        self._live = tty
        self._interval = interval if interval is not None else (0.5 if tty else 10.0)
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def __aenter__(self) -> Reporter:
        if self._enabled:
            self._task = asyncio.get_running_loop().create_task(self._run())
            if self._live:
                set_live(self._clear)
        return self

    def _clear(self) -> None:
        """Wipe the live line so a log line starts at column 0 (the next tick redraws it)."""
        self._stream.write("\r\x1b[2K")

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reporting and end a live line cleanly; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._live and self._enabled:
            set_live(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            if self._live:
                self._stream.write("\n")
                self._stream.flush()

    def render(self) -> str:
        return " | ".join(p.line() for p in self._items)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if self._live:
                self._stream.write("\r\x1b[2K" + self.render())
            else:
                self._stream.write(self.render() + "\n")
            self._stream.flush()
