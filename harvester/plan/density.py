"""The learned density: how many products an earlier run's windows say a time range holds.

A learned window is ``(start, end, count)`` in UNIX seconds; within it, updates are taken as
uniform. ``estimate`` sums any list of them directly; ``Density`` answers the same question in
O(log n) from cumulative counts, for a planner that asks it often.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

__all__ = ["Density", "estimate"]


def estimate(learned: Sequence[tuple[int, int, int]], start: int, end: int) -> float:
    """Expected products in ``[start, end)`` from learned windows (uniform within each)."""
    total = 0.0
    for a, b, n in learned:
        lo, hi = max(a, start), min(b, end)
        if hi > lo and b > a:
            total += n * (hi - lo) / (b - a)
    return total


class Density:
    """Cumulative learned counts: ``before(t)`` in O(log n) (windows sorted, not overlapping)."""

    def __init__(self, learned: Sequence[tuple[int, int, int]]) -> None:
        self.windows = [w for w in sorted(learned) if w[1] > w[0]]
        self.ends = [b for _, b, _ in self.windows]
        self.cum = [0.0]
        for _, _, n in self.windows:
            self.cum.append(self.cum[-1] + n)

    def before(self, t: int) -> float:
        """Expected products updated before ``t``."""
        i = bisect.bisect_right(self.ends, t)
        total = self.cum[i]
        if i < len(self.windows):
            a, b, n = self.windows[i]
            if t > a:
                total += n * (t - a) / (b - a)
        return total

    def between(self, start: int, end: int) -> float:
        """Expected products in ``[start, end)`` (``estimate``'s answer, in O(log n))."""
        return max(0.0, self.before(end) - self.before(start))
