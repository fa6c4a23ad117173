"""The adaptive rate a hidden quota is paced at until its window is read: pure, no I/O, no clock.

``AdaptiveRate`` wraps the cubic curve (``ratecubic.py``) with what each cut counts from. The
first cut counts our requests the server allowed, from any of them until the end the refusal
named (``until``, its upper bound), and takes the most of those rates (``densest``: an idle
stretch before the requests that met the refusal does not water it down); a request allowed
after the refusal that shows the end earlier than that bound redoes the cut (while it is the
only one). Later cuts count the requests allowed over the last two longest times-to-end (at
least 2 s). The curve regrows to the rate refused in ``K_WINDOWS`` longest times-to-end, at
least ``K_MIN`` seconds. A refusal without Retry-After closes the API for 1 s before the first
cut, then for ``BACKOFF_INTERVALS`` of the rate's intervals (at most 1 s).
"""

from __future__ import annotations

from harvester.engine.ratearrivals import NEVER
from harvester.engine.ratecubic import CubicRate

__all__ = ["BACKOFF_INTERVALS", "K_MIN", "K_WINDOWS", "AdaptiveRate", "densest"]

#: Under the adaptive rate, a refusal without Retry-After closes for this many of its intervals.
BACKOFF_INTERVALS = 2.5
#: K, the seconds the curve takes to regrow to the rate refused: this many longest times-to-end
#: (about a window) ...
K_WINDOWS = 6.0
#: ... and at least this many (a slower curve draws fewer refusals).
K_MIN = 4.0


def densest(sends: list[float], until: float) -> float:
    """Requests per second from any of ``sends`` until ``until``: the most of those rates (0
    for none)."""
    n = len(sends)
    rates = ((n - i) / max(until - t, 1e-3) for i, t in enumerate(sorted(sends)))
    return max(rates, default=0.0)


class AdaptiveRate:
    """The adaptive rate and what its cuts count from (module docstring)."""

    __slots__ = ("_first", "curve", "until")

    def __init__(self) -> None:
        self.curve = CubicRate()
        self.until = NEVER  # the end the first refusal named (upper bound)
        self._first: tuple[float, float] | None = None  # the first cut (time, k) while alone

    @property
    def rate(self) -> float | None:
        """The rate right after the last cut (None: never cut)."""
        return self.curve.rate

    def gap(self, now: float) -> float:
        """Seconds between requests at ``now`` (a cut must have come first)."""
        return 1.0 / self.curve.at(now)

    def first_wait(self) -> float:
        """The backoff after a first refusal in a row with no Retry-After (module docstring)."""
        return 1.0 if self.curve.rate is None else min(1.0, BACKOFF_INTERVALS / self.curve.rate)

    def cut(self, now: float, sends: list[float], longest: float, reopen: float) -> None:
        """A refusal at ``now``: ``sends``, when each request allowed so far left; ``longest``,
        the longest time-to-end seen; ``reopen``, when the API reopens."""
        k = max(K_MIN, K_WINDOWS * longest)
        if self.curve.rate is None:
            self._first = (now, k)
            allowed = densest(sends, max(self.until, reopen))
        else:
            self._first = None
            span = max(2.0, 2 * longest)
            allowed = sum(1 for t in sends if t > now - span) / span
        self.curve.cut(now=now, allowed_rate=allowed, k=k)

    def passed(self, now: float, sends: list[float]) -> None:
        """A request sent after a refusal was allowed, its answer at ``now``: the first cut
        again, counted to here, if that is earlier than it counted to (``sends`` as in
        ``cut``)."""
        if self._first is None or now >= self.until:
            return
        at, k = self._first
        sends = [t for t in sends if t <= at]
        if sends:
            self.until = now
            self.curve = CubicRate()
            self.curve.cut(now=at, allowed_rate=densest(sends, now), k=k)
