"""Our requests to one API as its server saw them: pure, no I/O, no clock.

``Arrivals`` logs each request by sequence number (when it left, when its answer came, allowed
or refused) and estimates when it reached the server: half-way through its round trip, or for
one still in flight, half the shortest round trip seen after it left. ``ratelearn.py`` counts
these arrivals into the windows it reads off the refusals.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

__all__ = ["NEVER", "Arrivals", "Req"]

#: "No time yet" in our monotonic seconds, whose origin is arbitrary (0 may lie ahead).
NEVER = float("-inf")
_LOGGED = 4096  # requests logged
_COUNTED = 400  # our latest requests a window is fitted to


@dataclass(slots=True)
class Req:
    """One request: when it left and its answer came (None: in flight), allowed or refused."""

    sent: float
    received: float | None = None
    allowed: bool = True


class Arrivals:
    """Our latest requests and their estimated arrivals (module docstring)."""

    __slots__ = ("log", "rtt", "since")

    def __init__(self) -> None:
        self.log: collections.OrderedDict[int, Req] = collections.OrderedDict()
        self.rtt: float | None = None  # the shortest round trip seen
        self.since = NEVER  # requests arriving earlier say nothing of the quota now

    def sent(self, seq: int, now: float) -> None:
        """Request ``seq`` left at ``now``."""
        self.log[seq] = Req(now)
        while len(self.log) > _LOGGED:
            self.log.popitem(last=False)

    def answered(self, seq: int, now: float, allowed: bool) -> Req | None:
        """Request ``seq``'s answer came at ``now``; the request (None: not logged)."""
        req = self.log.get(seq)
        if req is None:
            return None
        req.received, req.allowed = now, allowed
        rtt = now - req.sent
        self.rtt = rtt if self.rtt is None else min(self.rtt, rtt)
        return req

    def arrival(self, r: Req) -> float:
        """When the server saw a request: half-way through its round trip (estimated)."""
        return (r.sent + r.received) / 2 if r.received is not None else self.owd_arrival(r.sent)

    def owd_arrival(self, sent: float) -> float:
        """When a request leaving at ``sent`` reaches the server (estimated)."""
        return sent + (self.rtt or 0.0) / 2

    def latest(self) -> tuple[list[float], list[float]]:
        """Our latest requests' arrivals since ``since``: allowed ones (ascending; in flight
        too), refused ones."""
        recent = list(self.log.values())[-_COUNTED:]
        recent = [r for r in recent if self.arrival(r) >= self.since]
        allowed = sorted(self.arrival(r) for r in recent if r.allowed)
        return allowed, [self.arrival(r) for r in recent if not r.allowed]

    def allowed_sends(self) -> list[float]:
        """When each request whose answer allowed it left (oldest first)."""
        return [r.sent for r in self.log.values() if r.allowed and r.received is not None]
