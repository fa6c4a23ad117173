"""The tests' clocks, in one place: harvester's ``Clock`` seam driven by hand or skipped ahead.

Two kinds of clock appear in the tests. The harvester's ``Clock`` (``harvester.engine.clock``:
``monotonic``, ``time``, ``sleep``) is given to sources, runs and limiters; the simulator's wall
clock is a bare ``() -> float`` of UNIX seconds (``Simulator(settings, clock=...)``).

- ``FakeClock`` (the product's own) moves only when a test advances it: exact, no real time.
- ``InstantClock`` is a ``FakeClock`` whose sleeps return at once, moving time forward.
- ``JumpClock`` is real time plus every sleep, skipped: runs against a real-socket simulator take
  no time for their backoff and rate-limit waits, and ``slept`` shows what they would have taken.
- ``SimWallClock`` is the real clock whose wall time is read elsewhere (the simulator's).
- ``PagedClock`` is time that passes only as the simulator serves requests.
- ``Wall`` is a simulator wall clock the test sets by hand; ``RunningWall`` one that runs at the
  real pace from a chosen moment; ``clocks_at`` pairs one with a client ``JumpClock``.

``NOWS`` are the moments the date-sensitive tests run at (never today).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from harvester.engine.clock import FakeClock, SystemClock
from harvester.sim.settings import DEFAULT_NOW

if TYPE_CHECKING:
    from harvester.sim.server import Simulator

__all__ = [
    "NOWS",
    "T0",
    "FakeClock",
    "InstantClock",
    "JumpClock",
    "PagedClock",
    "RunningWall",
    "SimWallClock",
    "Wall",
    "clocks_at",
]

#: A start instant 3.5 s into a 10 s rate window (1_790_000_000 is a multiple of 10).
T0 = 1_790_000_003.5

#: Fixed "now"s the date-sensitive tests run under: the default world's, a new day, a leap day,
#: and 30 s before a year ends.
NOWS = [
    DEFAULT_NOW,
    datetime(2026, 12, 1, 21, 55, tzinfo=UTC),
    datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC),
]


class InstantClock(FakeClock):
    """A fake clock whose sleeps return at once (moving time forward)."""

    async def sleep(self, seconds: float) -> None:
        self._now += max(0.0, seconds)


@dataclass(slots=True)
class JumpClock:
    """Real time plus the sum of every sleep so far; a sleep only yields (module docstring).

    ``shift`` moves the wall time (never the monotonic time) to another moment than today's.
    """

    offset: float = 0.0
    slept: list[float] = field(default_factory=list)
    shift: float = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def time(self) -> float:
        return time.time() + self.shift + self.offset

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.slept.append(seconds)
        self.offset += seconds
        await asyncio.sleep(0)


class SimWallClock(SystemClock):
    """The real clock, except that its wall time is ``now()`` (the simulator's, say); its sleeps
    and monotonic time are real."""

    __slots__ = ("now",)

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now

    def time(self) -> float:
        return self.now()


class PagedClock:
    """Time that passes only as the simulator ``sim`` serves requests of ``api``, ``per_request``
    s each, from ``start``; sleeps add to it. One clock for the simulator (its ``time``) and the
    client."""

    def __init__(
        self, per_request: float, api: str = "nobb", start: float = DEFAULT_NOW.timestamp()
    ) -> None:
        self.per_request, self.api, self.start = per_request, api, start
        self.sim: Simulator | None = None
        self.offset = 0.0

    def monotonic(self) -> float:
        served = self.sim.stats[f"{self.api}_requests"] if self.sim is not None else 0
        return served * self.per_request + self.offset

    def time(self) -> float:
        return self.start + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        self.offset += max(0.0, seconds)
        await asyncio.sleep(0)


class Wall:
    """A wall clock (UNIX seconds) the test moves by hand; the simulator calls it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RunningWall:
    """The simulator's wall clock started at ``now``: it reads ``now`` plus real time elapsed."""

    def __init__(self, now: datetime) -> None:
        self._start = now.timestamp()
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return self._start + time.monotonic() - self._t0


def clocks_at(now: datetime) -> tuple[RunningWall, JumpClock]:
    """The simulator's and the client's clocks, both reading ``now`` at first (never today)."""
    return RunningWall(now), JumpClock(shift=now.timestamp() - time.time())
