"""NOBB partition planning: ``parts`` balanced ``from``/``to`` day windows from ``x-totalHits``.

A probe (``pageSize=1``) costs one request. Asked with ``to`` only, it tells how many items
changed up to that day: one point of the catalogue's cumulative count by change date; asked with
no filter, the total. A plan's cost is its latency, not its probe count, so probes go out in
levels of ``fanout`` at once (the connection budget), each level one round trip:

1. the total and ``fanout - 1`` days spread over ``[first, last]``, most of them in its recent
   end (``RECENT``);
2. after each level the cuts are chosen among the known days so that the largest partition is
   as small as possible. If it still exceeds ``total / parts`` by more than the tolerance
   (``grain`` items, or 1/8 of a partition if larger), the next level spends its ``fanout``
   probes inside the brackets (two neighbouring known days) that hold a cut point
   ``total * k / parts``, shared in proportion to their items: around where a monotone curve
   through the known points puts each cut point, and one mid-bracket (``_refinements``);

at most ``max_levels`` levels and ``max_probes`` probes. A day cannot be cut, so one heavy day
can leave a partition above ``total / parts``; empty partitions are never made.
The partitions cover all days with no gap and no overlap when ``from`` and ``to`` are both
inclusive: the first is open below, the last open above; the caller adds an open catch-up
partition for items changed during the run, and walks the boundaries again unless that reading
is proven (``edges.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

from harvester.engine.scheduler import gather_all

__all__ = ["Partition", "Plan", "Probe", "plan"]

Probe = Callable[[date | None, date | None], Coroutine[Any, Any, int]]
_DAY = timedelta(days=1)
#: The first level's days are evenly spaced in ``age ** (1 / RECENT)`` (age: days before
#: ``today``). Change dates crowd into recent years (an item's last change is overwritten by the
#: next one), so days spread evenly spent most first-level probes on old, nearly empty years
#: and a second level was needed. 3 puts the days at even shares of any range of a catalogue
#: whose items are ``U ** 3`` of its span old; on the simulator's (``U ** 2.5`` of 22 years)
#: one level plans 2 or 4 partitions of 30,000 items within the tolerance (benchmarks/bench_nobb,
#: part 4: 8 probes -> 4 at concurrency 4). Wherever the days fall, the next levels refine.
RECENT = 3


@dataclass(frozen=True, slots=True)
class Partition:
    """A day window; None bounds are open. ``id`` is stable across runs (for checkpoints)."""

    date_from: str | None
    date_to: str | None

    @property
    def id(self) -> str:
        return f"{self.date_from or 'start'}..{self.date_to or 'end'}"

    def params(self) -> dict[str, str]:
        out = {}
        if self.date_from:
            out["from"] = self.date_from
        if self.date_to:
            out["to"] = self.date_to
        return out


@dataclass(frozen=True, slots=True)
class Plan:
    """Partitions in date order with their item counts at planning time."""

    partitions: list[Partition]
    counts: list[int]
    total: int
    levels: int
    probes: int


async def plan(
    probe: Probe,
    *,
    first: date,
    last: date,
    parts: int,
    fanout: int = 4,
    grain: int = 1,
    max_levels: int = 4,
    max_probes: int = 256,
    least: int = 1,
    total: int | None = None,
    today: date | None = None,
) -> Plan:
    """At most ``parts`` partitions of about ``total / parts`` items each (module docstring).

    ``least``: fewer partitions than this are never good enough while a bracket holding a cut
    point spans more than one day (a cut must make pieces even where the tolerance would accept
    one); the bounds on levels and probes still apply. ``total``: the items in all, when the
    caller knows it already (a cut reads its partition's from the walk's x-totalHits); then it
    is not probed, and the first level is its ``fanout - 1`` days. ``today``: the day ages are
    counted from (``RECENT``); ``last`` if not given.
    """
    parts, fanout = max(1, parts), max(1, fanout)
    days = _spread(first, last, fanout, today or last) if parts > 1 else []
    # Known points of the cumulative count: day -> items changed up to and including it. The
    # sentinels stand for "before everything" and "after everything" (items dated after
    # ``last`` belong to the last, open partition).
    low, high = first - _DAY, last + _DAY
    asked = [*([] if total is not None else [probe(None, None)]), *(probe(None, d) for d in days)]
    counts = await gather_all(asked)
    if total is None:
        total, counts = counts[0], counts[1:]
    known = {low: 0, high: total, **dict(zip(days, counts, strict=True))}
    probes, levels = len(asked), 1
    if not total:
        return Plan([], [], 0, levels, probes)
    # Imbalance within the tolerance is not worth another round trip of probes.
    good_enough = total / parts + max(grain, total // (parts * 8))
    while True:
        points = _monotonic(known)
        ends = _best_cuts([c for _, c in points], parts)
        largest = max(points[i][1] - points[j][1] for i, j in zip(ends, [0, *ends], strict=False))
        enough = largest <= good_enough and len(ends) >= min(least, parts)
        if enough or levels >= max_levels or probes >= max_probes:
            break
        wanted = _refinements(points, total, parts, min(fanout, max_probes - probes))
        if not wanted:
            break
        found = await gather_all(probe(None, d) for d in wanted)
        known.update(zip(wanted, found, strict=True))
        probes += len(wanted)
        levels += 1
    out, sizes = _partitions(points, ends, high)
    return Plan(out, sizes, total, levels, probes)


def _partitions(
    points: list[tuple[date, int]], ends: list[int], high: date
) -> tuple[list[Partition], list[int]]:
    """The partitions ending at ``points[i]`` for each ``i`` in ``ends``, and their sizes; the
    last, ending at the ``high`` sentinel, is open above."""
    out: list[Partition] = []
    sizes: list[int] = []
    start: str | None = None
    prev = 0
    for i in ends:
        day, cum = points[i]
        out.append(Partition(start, None if day == high else day.isoformat()))
        sizes.append(cum - prev)
        start, prev = (day + _DAY).isoformat(), cum
    return out, sizes


def _spread(first: date, last: date, fanout: int, today: date) -> list[date]:
    """The first level's ``fanout - 1`` days in ``(first, last)``, evenly spaced in the cube
    root of their age at ``today`` (``RECENT``): most of them in the range's recent end."""
    near = max(0, (today - last).days) ** (1 / RECENT)
    far = max(0, (today - first).days) ** (1 / RECENT)
    back = {round((near + (far - near) * k / fanout) ** RECENT) for k in range(1, fanout)}
    return sorted(d for d in (today - timedelta(days=b) for b in back) if first < d < last)


def _monotonic(known: dict[date, int]) -> list[tuple[date, int]]:
    """Known points in day order; counts made non-decreasing (the catalogue may change)."""
    points = sorted(known.items())
    for i in range(1, len(points)):
        if points[i][1] < points[i - 1][1]:
            points[i] = (points[i][0], points[i - 1][1])
    return points


def _refinements(points: list[tuple[date, int]], total: int, parts: int, budget: int) -> list[date]:
    """The next level's probe days, inside the brackets (two neighbouring known days) that hold
    a cut point ``total * k / parts``; a bracket's probes are shared in proportion to its items.

    All but one of a cut point's probes go where the known points' monotone curve (``_Curve``)
    puts it, a quarter of an even share of the bracket's items apart, so that the next cut falls
    within about that of the even one; the last (with two or more) is the bracket's middle day,
    in case the curve is wrong there (a sharp change of density inside the bracket). Planned
    this way, the simulator's 10,000 items make 4 partitions within 2 % of even in 2 levels
    (even days alone: 8-10 %, one more page per end).
    """
    cuts: dict[int, list[float]] = {}  # bracket (index of its low point) -> its cut points
    for k in range(1, parts):
        q = total * k / parts
        for i, ((lo, c_lo), (hi, c_hi)) in enumerate(pairwise(points)):
            if c_lo < q < c_hi:
                if (hi - lo).days > 1:
                    cuts.setdefault(i, []).append(q)
                break
    if not cuts or budget < 1:
        return []
    heavy = {i: points[i + 1][1] - points[i][1] for i in cuts}
    order = sorted(cuts, key=lambda i: -heavy[i])[:budget]
    weight = sum(heavy[i] for i in order)
    curve = _Curve(points)
    days: set[date] = set()
    for i in order:
        share = 1 + (budget - len(order)) * heavy[i] // weight
        n = min(share, (points[i + 1][0] - points[i][0]).days - 1)
        qs = cuts[i]
        for m, q in enumerate(qs):
            days.update(_around(curve, i, q, n // len(qs) + (m < n % len(qs))))
    return sorted(days)


def _around(curve: _Curve, i: int, q: float, n: int) -> list[date]:
    """``n`` probe days for the cut point ``q`` in bracket ``i`` (``_refinements``)."""
    if n < 1:
        return []
    (lo, c_lo), (hi, c_hi) = curve.points[i], curve.points[i + 1]
    near = max(1, n - 1)
    step = (c_hi - c_lo) / (near + 1) / 4
    out = []
    for j in range(near):
        target = min(max(q + step * (j - (near - 1) / 2), c_lo + 0.5), c_hi - 0.5)
        out.append(min(max(curve.day_of(i, target), lo + _DAY), hi - _DAY))
    if n > near:
        out.append(lo + timedelta(days=(hi - lo).days // 2))
    return out


class _Curve:
    """The cumulative count between known points: a monotone cubic (Fritsch-Carlson) in days.

    It follows the catalogue's trend across brackets (change dates crowd into recent years), so
    it places a cut point inside a bracket better than a straight line between its two ends.
    """

    def __init__(self, points: list[tuple[date, int]]) -> None:
        self.points = points
        x = [d.toordinal() for d, _ in points]
        y = [float(c) for _, c in points]
        h = [b - a for a, b in pairwise(x)]
        d = [(y1 - y0) / w for (y0, y1), w in zip(pairwise(y), h, strict=True)]
        m = [d[0], *([0.0] * (len(points) - 2)), d[-1]]
        for k in range(1, len(points) - 1):
            if d[k - 1] > 0 and d[k] > 0:  # else flat at the point: keeps the curve monotone
                w1, w2 = 2 * h[k] + h[k - 1], h[k] + 2 * h[k - 1]
                m[k] = (w1 + w2) / (w1 / d[k - 1] + w2 / d[k])
        self._x, self._y, self._h, self._m = x, y, h, m

    def _at(self, i: int, t: float) -> float:
        y0, y1, h = self._y[i], self._y[i + 1], self._h[i]
        t2, t3 = t * t, t * t * t
        return (
            (2 * t3 - 3 * t2 + 1) * y0
            + (t3 - 2 * t2 + t) * h * self._m[i]
            + (3 * t2 - 2 * t3) * y1
            + (t3 - t2) * h * self._m[i + 1]
        )

    def day_of(self, i: int, q: float) -> date:
        """The day in bracket ``i`` where the curve reaches ``q`` (bisection: it is monotone)."""
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self._at(i, mid) < q else (lo, mid)
        return date.fromordinal(round(self._x[i] + hi * self._h[i]))


def _best_cuts(cum: list[int], parts: int) -> list[int]:
    """Indexes of the partition ends (the last is always the top) minimising the largest one.

    ``cum`` is non-decreasing from 0 (the low sentinel) to the total (the high sentinel). A
    partition runs from after one chosen point up to and including the next; empty ones are
    never chosen.
    """
    n = len(cum)
    inf = float("inf")
    # best[j][i]: the smallest largest-partition covering points 1..i with j partitions.
    best = [[inf] * n for _ in range(parts + 1)]
    back = [[0] * n for _ in range(parts + 1)]
    best[0][0] = 0
    for j in range(1, parts + 1):
        for i in range(1, n):
            for k in range(i):
                if best[j - 1][k] == inf or cum[i] == cum[k]:
                    continue
                worst = max(best[j - 1][k], cum[i] - cum[k])
                if worst < best[j][i]:
                    best[j][i], back[j][i] = worst, k
    j = min(range(1, parts + 1), key=lambda j: (best[j][n - 1], j))
    ends, i = [], n - 1
    while j > 0:
        ends.append(i)
        i = back[j][i]
        j -= 1
    return ends[::-1]
