"""Helpers for tests that talk to the simulator over real sockets."""

from __future__ import annotations

import base64

from harvester.sim.settings import SimSettings


class WallClock:
    """A settable wall clock for the simulator (token ages, JWT expiry, rate windows)."""

    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def basic(settings: SimSettings) -> dict[str, str]:
    """The Authorization header for the simulator's NOBB account."""
    raw = f"{settings.username}:{settings.password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
