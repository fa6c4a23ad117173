"""Partition planning from x-totalHits probes: full coverage, balanced, bounded probes."""

from __future__ import annotations

import random
from datetime import date, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.plan.edges import DayEdges
from harvester.plan.partitions import Probe, _Curve, plan
from harvester.plan.walk import Partition

FIRST, LAST = date(1990, 1, 1), date(2026, 11, 20)


def _catalogue(n: int, seed: int) -> list[date]:
    rng = random.Random(seed)
    span = (LAST - FIRST).days
    # skewed to recent days, plus a few dated outside [FIRST, LAST]
    days = [LAST - timedelta(days=int(span * rng.random() ** 3)) for _ in range(n)]
    return [*days, date(1985, 5, 5), date(2027, 1, 1)]


def _bounds(p_from: str | None, p_to: str | None) -> tuple[date, date]:
    return (
        date.fromisoformat(p_from) if p_from else date.min,
        date.fromisoformat(p_to) if p_to else date.max,
    )


def _counter(items: list[date]) -> tuple[Probe, list[int]]:
    calls: list[int] = []

    async def probe(lo: date | None, hi: date | None) -> int:
        calls.append(1)
        return sum((lo is None or d >= lo) and (hi is None or d <= hi) for d in items)

    return probe, calls


def _sizes(items: list[date], parts: list[Partition]) -> list[int]:
    out = []
    for p in parts:
        lo, hi = _bounds(p.date_from, p.date_to)
        out.append(sum(lo <= d <= hi for d in items))
    return out


async def test_partitions_cover_every_item_once_and_are_balanced() -> None:
    """Every item falls in exactly one of the wanted partitions, each within 1/8 of its share."""
    items = _catalogue(20_000, 1)
    probe, calls = _counter(items)
    found = await plan(probe, first=FIRST, last=LAST, parts=4, fanout=8, grain=100)
    assert found.total == len(items)
    sizes = _sizes(items, found.partitions)
    assert sizes == found.counts
    assert sum(sizes) == len(items)
    assert len(sizes) == 4
    assert max(sizes) <= len(items) / 4 * 1.125
    assert found.partitions[0].date_from is None
    assert found.partitions[-1].date_to is None
    for a, b in zip(found.partitions, found.partitions[1:], strict=False):
        assert a.date_to is not None and b.date_from is not None
        assert date.fromisoformat(a.date_to) + timedelta(days=1) == date.fromisoformat(b.date_from)
    assert found.levels <= 4
    assert len(calls) == found.probes <= 8 * found.levels


async def test_one_partition_costs_one_probe() -> None:
    """A single partition needs only the total."""
    probe, calls = _counter(_catalogue(500, 2))
    found = await plan(probe, first=FIRST, last=LAST, parts=1, fanout=8)
    assert found.partitions == [Partition(None, None)]
    assert len(calls) == 1


async def test_a_heavy_day_is_one_partition_and_none_is_empty() -> None:
    """A day holding most items cannot be cut; the others share the rest, none empty."""
    items = [*(date(2020, 5, 5) for _ in range(900)), *_catalogue(300, 3)]
    probe, _ = _counter(items)
    # Six levels of 4 probes narrow 37 years to the day wherever the first level's days fall.
    found = await plan(probe, first=FIRST, last=LAST, parts=4, fanout=4, grain=10, max_levels=6)
    sizes = _sizes(items, found.partitions)
    assert sum(sizes) == len(items)
    assert all(sizes)
    assert 900 in sizes
    assert len(sizes) <= 4


async def test_empty_catalogue_has_no_partitions() -> None:
    """With nothing to fetch there is nothing to walk."""

    async def probe(lo: date | None, hi: date | None) -> int:
        return 0

    found = await plan(probe, first=FIRST, last=LAST, parts=4, fanout=4)
    assert (found.partitions, found.total) == ([], 0)


def test_day_edges_learn_from_a_pages_change_dates() -> None:
    """observe_all() proves an end inclusive only from an item changed on that very day."""
    edges = DayEdges()
    edges.observe_all("2024-01-02", "2024-01-05", [None, "2024-01-03T10:00:00", "2024-01-01"])
    assert (edges.from_inclusive, edges.to_inclusive) == (None, None)
    edges.observe_all("2024-01-02", "2024-01-05", ["2024-01-05T23:59:59", None])
    assert (edges.from_inclusive, edges.to_inclusive) == (None, True)
    edges.observe_all(None, None, ["2024-01-02T00:00:00"])  # an open range proves nothing
    assert (edges.from_inclusive, edges.to_inclusive) == (None, True)
    edges.observe_all("2024-01-02", None, ["2024-01-02T00:00:00"])
    assert (edges.from_inclusive, edges.to_inclusive) == (True, True)
    fixed = DayEdges(fixed=True)
    fixed.observe_all("2024-01-02", "2024-01-05", ["2024-01-02", "2024-01-05"])
    assert (fixed.from_inclusive, fixed.to_inclusive) == (None, None)


async def test_a_known_total_is_not_probed() -> None:
    """Given the total, the first level probes only its days, and the plan is the same."""
    items = _catalogue(5_000, 4)
    probe, calls = _counter(items)
    asked: list[tuple[date | None, date | None]] = []

    async def spy(lo: date | None, hi: date | None) -> int:
        asked.append((lo, hi))
        return await probe(lo, hi)

    probed = await plan(probe, first=FIRST, last=LAST, parts=4, fanout=4, grain=50)
    calls.clear()
    told = await plan(spy, first=FIRST, last=LAST, parts=4, fanout=4, grain=50, total=len(items))
    assert (None, None) not in asked
    assert all(lo is None and hi is not None for lo, hi in asked)
    assert told.probes == len(calls) == probed.probes - 1
    assert told.partitions == probed.partitions and told.counts == probed.counts


async def test_first_level_days_crowd_into_recent_years() -> None:
    """The first level's days lie inside the range, most of them in its recent quarter."""
    asked: list[date] = []

    async def probe(lo: date | None, hi: date | None) -> int:
        if hi is not None:
            asked.append(hi)
        return 100 if hi is None else 50

    await plan(probe, first=FIRST, last=LAST, parts=2, fanout=8, max_levels=1)
    assert len(asked) == 7
    assert all(FIRST < d < LAST for d in asked)
    recent = LAST - (LAST - FIRST) / 4
    assert sum(d > recent for d in asked) >= 4


async def test_cut_points_are_probed_where_the_curve_puts_them() -> None:
    """An evenly dated catalogue: 4 partitions within 5 % of even in 2 levels (even days: 3)."""
    rng = random.Random(7)
    span = (LAST - FIRST).days
    items = [LAST - timedelta(days=rng.randrange(span)) for _ in range(10_000)]
    probe, calls = _counter(items)
    found = await plan(probe, first=FIRST, last=LAST, parts=4, fanout=8, grain=200)
    sizes = _sizes(items, found.partitions)
    assert sizes == found.counts and sum(sizes) == len(items)
    assert (found.levels, len(calls)) == (2, 14)
    assert max(sizes) <= len(items) / 4 * 1.05


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(1, 400), st.integers(0, 5_000)), min_size=2, max_size=9),
    share=st.floats(0.001, 0.999),
)
def test_the_curve_is_monotone_inside_each_bracket(
    steps: list[tuple[int, int]], share: float
) -> None:
    """Between two known points the curve's day for a count lies in the bracket, in order."""
    day, count = FIRST, 0
    points = [(day, count)]
    for gap, more in steps:
        day, count = day + timedelta(days=gap), count + more
        points.append((day, count))
    curve = _Curve(points)
    for i, ((lo, c_lo), (hi, c_hi)) in enumerate(pairwise(points)):
        if c_hi > c_lo:
            a = curve.day_of(i, c_lo + (c_hi - c_lo) * share / 2)
            b = curve.day_of(i, c_lo + (c_hi - c_lo) * share)
            assert lo <= a <= b <= hi
