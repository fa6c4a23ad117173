"""Cutting a NOBB partition into smaller ones by change date, when its walk outlives its tokens.

``split`` plans ``pieces`` balanced sub-partitions of one partition with the planner of
``partitions.py``, its probes limited to the partition's days: the first piece keeps the
partition's lower bound (open or not), the last its upper bound, and the pieces cover its days
with no gap and no overlap. A partition of one day (or one whose items all fall on one day)
cannot be cut by date: ``split`` returns None and the walk goes on as before (restarts).

``child_seam`` hands a piece what the partition's walks had already claimed: every key of the
partition up to the ascending end's furthest and from the descending end's furthest was written,
for all of its days, so the piece's ends skip those keys (as after a resume) and a piece's
ascending end that reaches the descending end's region is done.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

from harvester.plan.partitions import Probe, plan
from harvester.plan.walk import Partition, Seam

__all__ = ["child_seam", "split"]


async def split(
    probe: Probe,
    part: Partition,
    *,
    first: date,
    today: date,
    pieces: int,
    fanout: int,
    grain: int,
    max_levels: int = 4,
    total: int | None = None,
) -> list[Partition] | None:
    """``pieces`` (at most) sub-partitions of ``part`` in date order, or None if it cannot be cut.

    ``first`` and ``today`` stand for an open lower and upper bound (items dated after
    ``today`` stay in the last piece). ``probe(lo, hi)`` counts items changed in ``[lo, hi]``;
    ``total``, if known (a walk's x-totalHits), is ``part``'s count and is not probed.
    A piece that still comes out too big is simply cut again.
    """
    lo = date.fromisoformat(part.date_from) if part.date_from else None
    hi = date.fromisoformat(part.date_to) if part.date_to else None
    span_lo = lo or first
    span_hi = hi or max(today, span_lo)
    if pieces < 2 or span_hi <= span_lo:
        return None

    async def inside(a: date | None, b: date | None) -> int:
        # plan() asks for the total (None, None) and cumulative counts (None, day).
        return await probe(lo, b if b is not None else hi)

    # least=2: a few dozen items within the tolerance are still to be cut, not kept whole
    # because the first probes, spread over the open bound's decades, all fell below them.
    found = await plan(
        inside,
        first=span_lo,
        last=span_hi,
        parts=pieces,
        fanout=fanout,
        grain=grain,
        max_levels=max_levels,
        least=2,
        total=total,
        today=today,
    )
    if len(found.partitions) < 2:
        return None
    out = [Partition(p.date_from, p.date_to) for p in found.partitions]
    out[0] = Partition(part.date_from, out[0].date_to)
    out[-1] = Partition(out[-1].date_from, part.date_to)
    _check_cover(part, out)
    return out


def child_seam(parent: Seam) -> Seam:
    """A piece's seam, starting where the partition's ends stood (module docstring)."""
    seam = Seam()
    seam.asc_high, seam.desc_low = parent.asc_high, parent.desc_low
    return seam


def _check_cover(part: Partition, pieces: list[Partition]) -> None:
    """The pieces tile ``part``'s days exactly (a bug here would lose items: fail loudly)."""
    if pieces[0].date_from != part.date_from or pieces[-1].date_to != part.date_to:
        raise AssertionError(f"pieces of {part.id} do not keep its bounds: {pieces}")
    for a, b in pairwise(pieces):
        if a.date_to is None or b.date_from is None:
            raise AssertionError(f"an inner bound of {part.id} is open: {pieces}")
        if date.fromisoformat(a.date_to) + timedelta(days=1) != date.fromisoformat(b.date_from):
            raise AssertionError(f"pieces of {part.id} leave a gap or overlap: {pieces}")
