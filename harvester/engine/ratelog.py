"""Our own recent requests to one API, as the rate-limit policy needs them: no I/O, no clock.

``SendLog`` keeps, per request sequence number, when it left, when its answer came (or when it
ended without one) and whether the server allowed it. From that it answers what the policy in
``ratepolicy.py`` asks: how many are still in flight (overall, or older than a given one),
how uneven the round trips are, when each request surely leaves a sliding window of a given
length, and which of our requests an answer's count covers (to bound a sliding window's length).
A request's arrival at the server is taken half-way through its round trip, give or take half
the spread of recent round trips; when one may take a sliding window's place of an older one is
reckoned from send times, where the unknown one-way delay cancels out.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

__all__ = ["EDGE", "Entry", "SendLog"]

#: Seconds kept clear of an edge computed to the last digit: a request sent exactly as an old
#: one leaves a sliding window (or as a fixed one ends) is a race the server's clock decides.
EDGE = 0.001


@dataclass(slots=True)
class Entry:
    """One request: sent, received (None while in flight), allowed (False after a 429)."""

    sent: float
    received: float | None = None
    allowed: bool = True

    @property
    def arrived(self) -> float:
        """Its estimated arrival at the server (half-way; the send time while in flight)."""
        return self.sent if self.received is None else (self.sent + self.received) / 2


class SendLog:
    """The recent requests of one limiter, oldest first (module docstring)."""

    def __init__(self) -> None:
        self._entries: collections.OrderedDict[int, Entry] = collections.OrderedDict()

    def add(self, seq: int, now: float, keep: float) -> None:
        """Record request ``seq`` leaving at ``now``; forget answered ones older than ``keep`` s."""
        self._entries[seq] = Entry(now)
        while len(self._entries) > 64:
            first = next(iter(self._entries.values()))
            if first.received is None or first.sent > now - keep:
                break
            self._entries.popitem(last=False)

    def answered(self, seq: int, received: float, allowed: bool) -> None:
        entry = self._entries.get(seq)
        if entry is not None:
            entry.received, entry.allowed = received, allowed

    def finished(self, seq: int, now: float) -> None:
        """Request ``seq`` is over; if it got no answer, it counts as answered now."""
        entry = self._entries.get(seq)
        if entry is not None and entry.received is None:
            entry.received = now

    def in_flight(self, before: int | None = None) -> int:
        """Requests still without an answer (only those older than ``before`` if given)."""
        return sum(
            1
            for k, e in self._entries.items()
            if e.received is None and (before is None or k < before)
        )

    def spread(self) -> float:
        """Half the spread of recent round trips: how far an arrival may be from half-way."""
        rtts = [e.received - e.sent for e in self._entries.values() if e.received is not None]
        rtts = rtts[-256:]  # recent ones: a passing spike of latency should not linger
        return (max(rtts) - min(rtts)) / 2 if rtts else 0.0

    def aging(self, shortest: float, longest: float, since: float) -> list[float]:
        """When a request may leave in the place of each allowed, answered one that a sliding
        window (``shortest`` to ``longest`` seconds long) surely still held for the answer to
        the request sent at ``since``.

        All in send times: a request reaches the server as long after it leaves as another
        one does, give or take the spread of round trips, so the one-way delay (which no answer
        tells) cancels out. An old request leaves the window ``longest`` at most after its
        arrival; a new one arrives after that if it leaves ``longest`` plus that spread after
        the old one. One that may have left before the request sent at ``since`` arrived may be
        in that answer's count already: it is not freed twice.
        """
        # Twice the spread seen: a few round trips need not have shown the whole of it yet.
        u = 4 * self.spread() + EDGE
        return [
            e.sent + longest + u
            for e in self._entries.values()
            if e.allowed and e.received is not None and e.sent + shortest > since + u
        ]

    def surely_out(self, width: float) -> list[float]:
        """When each allowed request is surely out of any window ``width`` long (its answer
        plus the width; in flight: not yet known, so never)."""
        return [
            1e18 if e.received is None else e.received + width
            for e in self._entries.values()
            if e.allowed
        ]

    def counted_span(self, seq: int, count: int) -> tuple[float, float] | None:
        """Bounds on a sliding window's length, if the answer to ``seq`` counted our latest
        ``count`` allowed requests: the oldest of them is inside, the one before it left."""
        mine = [
            e for k, e in self._entries.items() if k <= seq and e.allowed and e.received is not None
        ]
        this = self._entries.get(seq)
        if this is None or count < 1 or len(mine) <= count:
            return None
        u = self.spread()
        return (
            this.arrived - mine[-count].arrived - 2 * u,
            this.arrived - mine[-count - 1].arrived + 2 * u,
        )
