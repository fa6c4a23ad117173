"""Partition planning from x-totalHits probes: full coverage, balanced, bounded probes."""

from __future__ import annotations

import random
from datetime import date, timedelta

from harvester.partitions import plan

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


async def test_partitions_cover_every_item_once_and_are_balanced() -> None:
    """Every item falls in exactly one partition; partitions hold at most target (or one day)."""
    items = _catalogue(20_000, 1)
    calls = 0

    async def probe(lo: date | None, hi: date | None) -> int:
        nonlocal calls
        calls += 1
        return sum((lo is None or d >= lo) and (hi is None or d <= hi) for d in items)

    parts, total = await plan(probe, first=FIRST, last=LAST, target=3000)
    assert total == len(items)
    counts = []
    for p in parts:
        lo, hi = _bounds(p.date_from, p.date_to)
        counts.append(sum(lo <= d <= hi for d in items))
    assert sum(counts) == len(items)
    for p, c in zip(parts, counts, strict=True):
        assert c <= 3000 or p.date_from == p.date_to
    assert parts[0].date_from is None
    assert parts[-1].date_to is None
    assert calls <= 256


async def test_empty_catalogue_has_no_partitions() -> None:
    """With nothing to fetch there is nothing to walk."""

    async def probe(lo: date | None, hi: date | None) -> int:
        return 0

    assert await plan(probe, first=FIRST, last=LAST, target=10) == ([], 0)
