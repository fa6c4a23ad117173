"""Time as a seam: the real clock for runs, a fake one that tests step by hand.

Every part of a harvest that waits or reads time takes a ``Clock`` (the limiter and its policy,
retries, the sources, the run, the probe); tests pass ``FakeClock`` so that timing behaviour is
exact and instant (no real sleeps). Three read the real clock directly: ``progress.py`` (the
live line's rates and its redraw interval), ``store/lease.py`` (a lease's expiry is wall time
shared with other machines) and ``statuses.py`` (a 429's ``Retry-After`` HTTP date, read
against now).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """Monotonic time for waiting, wall time for servers' UNIX timestamps, and a sleep."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time`` and ``asyncio.sleep``."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when told: ``await clock.advance(s)`` wakes sleepers in order.

    >>> clock = FakeClock(start=1_000.0)
    >>> clock.time()
    1000.0
    """

    __slots__ = ("_counter", "_now", "_sleepers", "_wall_offset")

    def __init__(self, start: float = 1_700_000_000.0, *, origin: float = 0.0) -> None:
        # ``origin``: the monotonic reading at ``start``. A monotonic clock's origin is
        # arbitrary (``time.monotonic``'s is unspecified): nothing may take 0 for "long ago".
        self._now = origin
        self._wall_offset = start - origin
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._wall_offset + self._now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._counter), fut))
        await fut

    def next_deadline(self) -> float | None:
        """The earliest time a sleeper waits for, or None when nobody sleeps."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock right now."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper whose deadline passes, in deadline order."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            if not fut.done():
                fut.set_result(None)
            # Let the woken task run (and perhaps sleep again) before the next deadline.
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)
