"""Where a hidden quota's windows end, as its refusals bound them: pure, no I/O, no clock.

A 429 with ``Retry-After`` names the end of the window that refused it (``refusal_end``, in our
monotonic seconds): a value in whole seconds is the server's time to that end rounded up, so the
end is as likely anywhere in its bounds (``rounded``); an HTTP date names a whole second on the
server's clock, read through the skew its ``Date`` headers show. ``WindowEnds`` keeps the ends
named so far, each as bounds, and narrows them with all that bounds an end:

- refusals naming the same end (their bounds overlap) narrow it to where they meet;
- a refused request reached the server before the end its refusal names: the end is after the
  request left;
- a request sent after a refusal and allowed reached the server after that end (a fixed window
  allows nothing more until its end, a sliding one nothing until its oldest request leaves): the
  ends named so far are before its answer came.

``ratelearn.py`` reads the window's kind, length and phase off these ends (``ratefit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from harvester.engine.rateheaders import retry_after_seconds
from harvester.engine.rateskew import ServerClock

__all__ = ["KEPT", "Named", "WindowEnds", "refusal_end"]

#: Distinct window ends (and refusals naming one) kept.
KEPT = 24

Bounds = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Named:
    """What one 429's ``Retry-After`` says: the bounds of the window end it names (None: no
    usable end), or a ``hold`` instead (a wait beyond the cap: the cap), and whether the end is
    ``rounded`` (whole seconds: as likely anywhere in its bounds)."""

    end: Bounds | None = None
    hold: float | None = None
    rounded: bool = False


def refusal_end(
    retry_after: str | None,
    sent_at: float,
    received: float,
    wall: float,
    clock: ServerClock,
    max_wait: float,
) -> Named:
    """The end a 429's ``Retry-After`` names, in our monotonic seconds: its request left at
    ``sent_at``, the answer came at ``received`` (our wall time ``wall``)."""
    after = retry_after_seconds(retry_after, wall + clock.skew)
    if after is None:
        return Named()
    if after > max_wait:  # absurd: one capped wait, no window
        return Named(hold=max_wait)
    if (retry_after or "").strip().isdigit():  # whole seconds, rounded up at the server
        return Named((sent_at + after - 1.0, received + after), rounded=True)
    # An HTTP date: a whole second on the server's clock, the skew known to within its bounds.
    return Named((received + after - 1.0 - clock.early(), received + after + clock.late()))


class WindowEnds:
    """The window ends a hidden quota's refusals named, as bounds (module docstring)."""

    __slots__ = ("_ends", "longest", "named", "reach")

    def __init__(self) -> None:
        self._ends: list[tuple[float, float, float]] = []  # (bounds, first refusal naming it)
        self.named: list[tuple[float, float, float]] = []  # (arrival, end bounds) per refusal
        self.longest = 0.0  # the longest time from a refusal to its end (its lower bound)
        self.reach = 0.0  # ... and its upper bound

    @property
    def ends(self) -> list[Bounds]:
        """The distinct ends named, ascending."""
        return [(a, b) for a, b, _ in self._ends]

    @property
    def time_to_end(self) -> Bounds:
        """The longest time from a refusal to the end it named, as bounds."""
        return self.longest, self.reach

    def add(self, end: Bounds, *, sent: float, arrival: float, now: float) -> Bounds:
        """A refusal at ``now`` of a request that left at ``sent`` (estimated to arrive at
        ``arrival``) names ``end``; returns that end's bounds as all refusals naming it narrow
        them (``longest`` counts from the first of those refusals to the narrowed lower
        bound)."""
        lo, hi = max(end[0], sent), end[1]  # it arrived before the end it names
        self.reach = max(self.reach, hi - now)
        self.named = [*self.named[-KEPT + 1 :], (arrival, lo, hi)]
        for i, (a, b, first) in enumerate(self._ends):
            if lo <= b and a <= hi:  # the same end: narrow it
                lo, hi, now = max(a, lo), min(b, hi), min(first, now)
                self._ends[i] = (lo, hi, now)
                break
        else:
            self._ends.append((lo, hi, now))
            self._ends.sort()
            del self._ends[:-KEPT]
        self.longest = max(self.longest, lo - now)
        return lo, hi

    def passed(self, received: float) -> bool:
        """A request sent after the last refusal was allowed, its answer at ``received``: every
        end named so far had passed when it arrived. True if that narrowed an end."""
        changed = False
        for i, (a, b, first) in enumerate(self._ends):
            if a <= received < b:
                self._ends[i], changed = (a, received, first), True
        for i, (t, a, b) in enumerate(self.named):
            if a <= received < b:
                self.named[i] = (t, a, received)
        return changed

    def forget_older(self) -> None:
        """No fixed window explains the ends: keep only the later half."""
        del self._ends[: len(self._ends) // 2]
