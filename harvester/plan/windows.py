"""Time windows for an API without pagination: a pure planner, no I/O.

The DBK export answers everything updated in ``[updatedFrom, updatedTo)`` in one response, cut
off (silently) at ``cap`` products. ``WindowPlanner`` covers a range ``[start, end)`` of UNIX
seconds with windows so that no response is cut off, in close to the fewest requests:

- The range is split into ``lanes`` that are walked side by side (one window in flight per lane's
  cursor). With a learned density (the windows of an earlier run: ``(start, end, count)``) the
  lanes hold equal estimated counts and start at the width that fills ``fill × cap``; without
  one, lanes split time evenly and start a lane-wide window.
- A complete window (``count < cap``) sets its lane's next width to ``width × fill·cap / count``
  (at most ×8, ×8 after an empty one): windows grow where the catalogue is sparse and shrink
  where it is dense.
- A full window (``count ≥ cap``) may be cut off: its records are not trusted to be all, and it
  is split (at the median and newest update times of the products it did hold, or around the
  one second they all share, else at the midpoint); the parts are handed out before the lane's
  cursor moves on. A one-second window that is still full cannot be split (``unsplittable``):
  the run is incomplete, never silently truncated.
- When a lane has nothing to hand out and another lane has range left, that range is split and
  a new lane takes its upper half, so workers stay busy.

Edges: ``start`` inclusive, ``end`` exclusive, and adjacent windows share their edge, so every
second belongs to exactly one window (tested with literal responses in tests/test_windows.py).
These are the planner's terms; what is sent for a window, whichever way the server reads its
ends, is ``edges.py``'s.
``covered`` lists the complete windows: the learned density for the next run (``density.py``),
and with ``done`` the resume state.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harvester.plan.density import Density, estimate

__all__ = ["Window", "WindowPlanner", "estimate", "sent_time", "stamp"]

GROW = 8.0


def stamp(ts: int) -> str:
    """UNIX seconds as ISO 8601 basic UTC (``20250204T093000Z``), the form the API accepts."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def sent_time(ts: int) -> str:
    """UNIX seconds as the export's filters are sent: the docs' own ISO 8601 basic form with a
    numeric offset, to the second (``20250204T093000+0000``). A server may refuse ``Z`` or the
    extended form (open-points.md); none seen refuses this one.
    """
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%S+0000")


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """``[start, end)`` in UNIX seconds."""

    start: int
    end: int

    @property
    def width(self) -> int:
        return self.end - self.start

    @property
    def id(self) -> str:
        return f"{stamp(self.start)}..{stamp(self.end)}"


@dataclass(slots=True)
class _Lane:
    cursor: int
    end: int
    width: int
    stack: list[Window] = field(default_factory=list)
    current: Window | None = None  # the window from the cursor in flight
    ratio: float = 1.0  # observed / learned count of the lane's last window

    @property
    def busy(self) -> bool:
        return self.current is not None


class WindowPlanner:
    """Hands out windows over ``[start, end)`` and learns from their counts (module docstring)."""

    def __init__(
        self,
        start: int,
        end: int,
        *,
        cap: int,
        lanes: int = 4,
        fill: float = 0.7,
        learned: Sequence[tuple[int, int, int]] = (),
        done: Iterable[tuple[int, int]] = (),
    ) -> None:
        if end < start or cap < 1 or lanes < 1 or not 0 < fill <= 1:
            raise ValueError("need start <= end, cap >= 1, lanes >= 1, 0 < fill <= 1")
        self.cap = cap
        self.fill = fill
        self.target = max(1.0, cap * fill)
        self.learned = sorted(learned)
        self._density = Density(self.learned)
        self.covered: list[tuple[int, int, int]] = []
        self.unsplittable: list[Window] = []
        self.failed: dict[Window, str] = {}
        self.requests = 0
        self._owner: dict[Window, _Lane] = {}
        self._lanes: list[_Lane] = []
        for a, b in _gaps(start, end, done):
            self._lanes += self._split(a, b, lanes)

    # -- planning ---------------------------------------------------------------------------

    def _est(self, a: int, b: int) -> float:
        return self._density.between(a, b)

    def _split(self, a: int, b: int, lanes: int) -> list[_Lane]:
        """Lanes over ``[a, b)``: equal estimated counts with a learned density, else equal time."""
        n = max(1, min(lanes, b - a))
        if self.learned and self._est(a, b) > 0:
            cuts = [a] + [self._quantile(a, b, k / n) for k in range(1, n)] + [b]
        else:
            cuts = [a + (b - a) * k // n for k in range(n + 1)]
        cuts = sorted(set(cuts))
        return [_Lane(lo, hi, self._width_at(lo, hi)) for lo, hi in itertools.pairwise(cuts)]

    def _quantile(self, a: int, b: int, q: float) -> int:
        """The time by which ``q`` of the estimated count in ``[a, b)`` has passed."""
        return self._quantile_count(a, b, self._est(a, b) * q)

    def _quantile_count(self, a: int, b: int, want: float) -> int:
        """The first time ``t`` in ``(a, b]`` with an estimated ``want`` products in ``[a, t)``."""
        lo, hi = a, b
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._est(a, mid) < want:
                lo = mid
            else:
                hi = mid
        return hi

    def _width_at(self, lo: int, hi: int) -> int:
        """The first window's width for a lane over ``[lo, hi)``."""
        if not self.learned:
            return hi - lo
        count = self._est(lo, hi)
        if count <= self.target:
            return hi - lo
        return max(1, int((hi - lo) * self.target / count))

    # -- the state machine ------------------------------------------------------------------

    def take(self) -> Window | None:
        """The next window to fetch, or None when every window left is in flight (or none is)."""
        for lane in self._lanes:
            if lane.stack:
                return self._hand_out(lane, lane.stack.pop())
        for lane in self._lanes:
            if not lane.busy and lane.cursor < lane.end:
                return self._advance(lane)
        victim = max(
            (ln for ln in self._lanes if ln.busy and ln.end - ln.cursor > max(1, 2 * ln.width)),
            key=lambda ln: ln.end - ln.cursor,
            default=None,
        )
        if victim is None:
            return None
        mid = victim.cursor + (victim.end - victim.cursor) // 2
        lane = _Lane(mid, victim.end, victim.width)
        victim.end = mid
        self._lanes.append(lane)
        return self._advance(lane)

    def _advance(self, lane: _Lane) -> Window:
        width = lane.width
        if self.learned:
            # The learned density, corrected by how far the lane's last window was off.
            want = self.target / max(lane.ratio, 1 / GROW)
            if self._est(lane.cursor, lane.end) <= want:
                width = lane.end - lane.cursor
            else:
                width = self._quantile_count(lane.cursor, lane.end, want) - lane.cursor
        w = Window(lane.cursor, min(lane.end, lane.cursor + max(1, width)))
        lane.cursor = w.end
        lane.current = w
        return self._hand_out(lane, w)

    def _hand_out(self, lane: _Lane, w: Window) -> Window:
        self._owner[w] = lane
        self.requests += 1
        return w

    def complete(self, w: Window, count: int) -> None:
        """``w`` answered ``count < cap`` products (0 for a 204): all of them, covered."""
        if count >= self.cap:
            raise ValueError(f"{w.id}: {count} products fill the cap; call truncated()")
        lane = self._release(w)
        self.covered.append((w.start, w.end, count))
        if self.learned:
            lane.ratio = max(count, 1) / max(self._est(w.start, w.end), 1.0)
        scale = GROW if count == 0 else min(GROW, self.target / count)
        lane.width = max(1, math.floor(w.width * scale))

    def truncated(self, w: Window, seen: Sequence[int] = ()) -> bool:
        """``w`` came back full, so possibly cut off: split it. False if it cannot be split.

        ``seen`` are the update times of the products the response did hold: if they all share
        one second, that second becomes a window of its own (it may be unsplittable); otherwise
        the splits are at their median and newest, else at the midpoint. Any split point is
        correct; these just find a dense spot in one step instead of dozens of halvings.
        """
        lane = self._release(w)
        lane.width = max(1, w.width // 4)
        if self.learned:
            ratio = self.cap / max(self._est(w.start, w.end), 1.0)
            lane.ratio = max(lane.ratio, ratio)
        if w.width <= 1:
            self.unsplittable.append(w)
            return False
        inside = sorted(t for t in seen if w.start <= t < w.end)
        if inside and inside[0] == inside[-1]:
            s = inside[0]
            parts = [Window(w.start, s), Window(s, s + 1), Window(s + 1, w.end)]
        else:
            # Median and newest: a server that sends the oldest products first (a cut-off
            # prefix) gets two windows it answers whole and the rest; one that sends a sample
            # gets two halves and a sliver.
            cuts = sorted(
                {t for t in (inside[len(inside) // 2], inside[-1]) if w.start < t < w.end}
                if inside
                else set()
            )
            if not cuts:
                cuts = [w.start + w.width // 2]
            edges = [w.start, *cuts, w.end]
            parts = [Window(a, b) for a, b in itertools.pairwise(edges)]
        lane.stack += reversed([p for p in parts if p.width > 0])  # lowest handed out first
        return True

    def limit(self, cap: int) -> None:
        """The server states a smaller cap than ``cap`` (it refuses larger answers instead of
        cutting them off): plan windows to fill that one from now on. ``cap`` itself, the
        count a silently cut-off answer reaches, is unchanged."""
        self.target = max(1.0, min(self.target, cap * self.fill))

    def fail(self, w: Window, error: str) -> None:
        """``w`` failed for good: its range stays uncovered and the run incomplete."""
        self._release(w)
        self.failed[w] = error

    def _release(self, w: Window) -> _Lane:
        lane = self._owner.pop(w)
        if lane.current == w:
            lane.current = None
        return lane

    @property
    def in_flight(self) -> int:
        return len(self._owner)

    @property
    def finished(self) -> bool:
        """Nothing in flight and nothing left to hand out."""
        return not self._owner and all(not ln.stack and ln.cursor >= ln.end for ln in self._lanes)


def _gaps(start: int, end: int, done: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``[start, end)`` not covered by the ``done`` windows."""
    out, at = [], start
    for a, b in sorted(done):
        if a > at:
            out.append((at, min(a, end)))
        at = max(at, b)
    if at < end:
        out.append((at, end))
    return [(a, b) for a, b in out if b > a]
