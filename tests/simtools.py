"""Helpers for tests that talk to the simulator over real sockets."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from datetime import datetime

from harvester.sim.settings import SimSettings
from tests.front import JumpClock


class WallClock:
    """A settable wall clock for the simulator (token ages, JWT expiry, rate windows)."""

    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RunningWall:
    """The simulator's wall clock started at ``now``: it reads ``now`` plus real time elapsed."""

    def __init__(self, now: datetime) -> None:
        self._start = now.timestamp()
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return self._start + time.monotonic() - self._t0


@dataclass(slots=True)
class NowClock(JumpClock):
    """A ``JumpClock`` whose wall time starts at another moment (``shift`` from the real one);
    its monotonic time is JumpClock's own, never shifted (waits are measured on it)."""

    shift: float = 0.0

    def time(self) -> float:
        return time.time() + self.shift + self.offset


def clocks_at(now: datetime) -> tuple[RunningWall, NowClock]:
    """The simulator's and the client's clocks, both reading ``now`` at first (never today)."""
    return RunningWall(now), NowClock(shift=now.timestamp() - time.time())


def basic(settings: SimSettings) -> dict[str, str]:
    """The Authorization header for the simulator's NOBB account."""
    raw = f"{settings.username}:{settings.password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
