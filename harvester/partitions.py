"""NOBB partition planning: balanced ``from``/``to`` day windows from ``x-totalHits`` probes.

A probe (``pageSize=1`` with a day range) costs one request and tells how many items changed in
that range. ``plan`` starts from the whole history and cuts any range holding more than ``target``
items into ``ways`` pieces, until every range is under it or is a single day (which cannot be cut
further and is walked from both ends like any other). Empty ranges are dropped. The ranges
cover all days with no gap and no overlap; the caller adds an open catch-up partition
for items changed during the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

from harvester.walk import Partition

__all__ = ["Probe", "plan"]

Probe = Callable[[date | None, date | None], Awaitable[int]]


async def plan(
    probe: Probe,
    *,
    first: date,
    last: date,
    target: int,
    total: int | None = None,
    ways: int = 4,
    max_probes: int = 256,
) -> tuple[list[Partition], int]:
    """Partitions of at most ``target`` items where possible; returns them and the total hits.

    The first partition is open below (``from`` omitted) and the last open above, so items
    dated outside ``[first, last]`` are not lost.
    """
    if total is None:
        total = await probe(None, None)
    probes = 1
    done: list[tuple[date, date, int]] = []
    level = [(first, last, total)]
    # Level by level, every heavy range is cut into ``ways`` pieces probed concurrently:
    # latency, not the probe count, is what a plan costs, and change dates are skewed (a
    # plain halving would probe one range after another down the busy end).
    while level:
        pieces: list[tuple[date, date]] = []
        for lo, hi, hits in level:
            if hits == 0:
                continue
            if hits <= target or lo >= hi or probes + len(pieces) + ways > max_probes:
                done.append((lo, hi, hits))
                continue
            step = max(1, ((hi - lo).days + 1) // ways)
            cut = lo
            while cut <= hi:
                end = min(hi, cut + timedelta(days=step - 1))
                if end >= hi - timedelta(days=step // 2):
                    end = hi  # fold a short tail into the last piece
                pieces.append((cut, end))
                cut = end + timedelta(days=1)
        counts = await asyncio.gather(
            *(probe(None if lo == first else lo, None if hi == last else hi) for lo, hi in pieces)
        )
        probes += len(pieces)
        level = [(lo, hi, n) for (lo, hi), n in zip(pieces, counts, strict=True)]
    done.sort()
    parts = []
    for i, (lo, _, _) in enumerate(done):
        # Each partition runs up to the day before the next one starts, so the empty ranges
        # that were dropped leave no gap.
        nxt = done[i + 1][0] - timedelta(days=1) if i + 1 < len(done) else None
        parts.append(
            Partition(None if i == 0 else lo.isoformat(), nxt.isoformat() if nxt else None)
        )
    if not parts and total:
        parts = [Partition(None, None)]
    return parts, total
