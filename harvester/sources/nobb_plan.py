"""Planning NOBB partitions: which ones a run walks, and cutting a running one by change date.

``PartitionPlanner.start`` gives a run its partitions. A sync walks one open partition ``from``
the last complete run's date minus ``sync_overlap_days`` (or, resumed after a cut, the pieces its
checkpoint listed), a resumed dump the plan its checkpoint listed, and a new dump plans balanced
partitions from ``x-totalHits`` probes (``partitions.py``), largest first, and enough of them
for each walk to fit ``walk_max_seconds`` at the probes' page time (``walk_budget.py``).

``cut`` cuts a partition whose walk is about to pass that budget, or whose tokens died, into
pieces by change date (``nobb_split.py``). ``parts`` is the plan as it stands, each cut
partition replaced by its pieces; the checkpoint lists it, so ``--resume`` walks the pieces.
``fills`` are the partitions that walk the plan's boundaries again (``edges.py``).
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass, field
from datetime import date, timedelta

from harvester.config import NobbConfig
from harvester.engine.clock import Clock
from harvester.errors import FetchError
from harvester.plan.edges import DayEdges
from harvester.plan.page_headers import TOTAL, header
from harvester.plan.partitions import Probe, plan
from harvester.plan.positions import Positions
from harvester.plan.walk import Partition, Seam, Walk
from harvester.plan.walk_budget import WalkBudget
from harvester.plural import counted
from harvester.sources.base import RunContext
from harvester.sources.nobb_fetch import PageFetcher
from harvester.sources.nobb_split import split

__all__ = ["CUT_AIM", "FIRST_DAY", "MAX_PIECES", "PartitionPlanner"]

log = logging.getLogger("harvester.nobb")
FIRST_DAY = date(1990, 1, 1)
#: Most pieces one cut (or the first plan, for walk_max_seconds) makes; a piece that still does
#: not fit is cut again.
MAX_PIECES = 64
#: A cut aims its pieces at this share of what fits one walk, and takes any piece up to what
#: fits: a quarter more pieces, but most cuts settle on their first level of probes.
CUT_AIM = 0.75


@dataclass(slots=True, kw_only=True)
class PartitionPlanner:
    """Plans one run's partitions and cuts them while they are walked (module docstring)."""

    cfg: NobbConfig
    fetcher: PageFetcher  #: sends the probes
    clock: Clock
    edges: DayEdges
    ends: int  #: walks per partition: 2 when two-ended, else 1
    today: date  #: the run's day (UTC), standing for an open upper bound
    #: How long a walk may run: the walks feed it page times and expiries, cuts read it.
    budget: WalkBudget
    parts: list[Partition] = field(default_factory=list)  #: the plan as it stands
    _splitting: set[str] = field(default_factory=set, init=False)  # being cut by one end
    _uncuttable: set[str] = field(default_factory=set, init=False)

    async def start(self, ctx: RunContext) -> tuple[list[Partition], int | None] | None:
        """The run's partitions, and the total a new dump's probes counted (else None).

        None if planning failed: logged and recorded as ``ctx.partitions["plan"]``; the run has
        no walks and is incomplete, and ``--resume`` plans again. A new plan is saved
        (``ctx.run.save_plan``) before it is returned; ``parts`` starts as a copy of it.
        """
        cfg = self.cfg
        expected: int | None = None
        if ctx.mode == "sync":
            last = ctx.source_state.get("high_water")
            since = (
                date.fromisoformat(str(last)) - timedelta(days=cfg.sync_overlap_days)
                if last
                else FIRST_DAY
            )
            parts = [Partition(self.edges.since(since).isoformat(), None)]
            if ctx.plan is not None:  # a resumed sync that was cut: the pieces it listed
                parts = [Partition(lo, hi) for lo, hi in ctx.plan]
            # Items changed before it came only with ``from`` asked a day early (edges.py).
            self.fetcher.floor = since.isoformat()
        elif ctx.plan is not None:
            parts = [Partition(lo, hi) for lo, hi in ctx.plan]
        else:
            wanted = cfg.partitions or max(1, cfg.concurrency // self.ends)
            try:
                parts, expected = await self._plan(ctx, wanted)
            except FetchError as exc:
                log.error("nobb planning failed: %s", exc)
                ctx.partitions["plan"] = {"ok": False, "error": str(exc)}
                return None
            await ctx.run.save_plan([[p.date_from, p.date_to] for p in parts])
        self.parts = list(parts)
        return parts, expected

    def fills(self) -> list[Partition]:
        """Each boundary ``x`` of the plan as it stands, as the partition ``x-1..x+2``.

        Partitions ``..x`` and ``x+1..`` miss day ``x``, ``x+1`` or both when an end is
        exclusive; ``from = x-1``, ``to = x+2`` holds both days under every reading (edges.py).
        """
        day = timedelta(days=1)
        bounds = sorted({date.fromisoformat(p.date_to) for p in self.parts if p.date_to})
        return [Partition((x - day).isoformat(), (x + 2 * day).isoformat()) for x in bounds]

    def must_cut(self, seam: Seam, walk: Walk, *, elapsed: float, pages: int) -> bool:
        """Whether ``walk``, a chain ``elapsed`` seconds old after ``pages`` pages, is to be cut
        before its next page: that page would outlive the budget and the partition's last pages
        are not near (``WalkBudget.finishes``)."""
        if not self.budget.should_cut(elapsed=elapsed, pages=pages):
            return False
        # What the next pages may bring: this end's, and the other end's page in flight and its
        # next. Generous: a page taken in vain costs that page, a cut re-reads the partition.
        others = sum(not w.done for w in seam.ends.values() if w is not walk)
        near = self.cfg.page_size * (1 + 2 * others)
        return not self.budget.finishes(
            elapsed=elapsed, pages=pages, left=seam.gap(), per_page=near
        )

    async def cut(
        self, ctx: RunContext, part: Partition, seam: Seam, walk: Walk, positions: Positions
    ) -> list[Partition] | None:
        """Cut ``part`` into pieces whose walks fit the budget, by change date.

        None: this end walks on (the ends met, or ``part`` cannot be cut). Otherwise this end
        stops (it cut ``part``, or the other end does) and the pieces returned, those not
        finished before a crash, are to be walked, each from a ``child_seam`` of ``seam``.
        """
        pid = part.id
        if seam.cut or pid in self._splitting:
            # The other end cuts; if it cannot, it walks on alone (still exact), so it must not
            # count on this end's next page (Walk._other_end_finishes): this end is done.
            walk.done = True
            return []
        if seam.closed or pid in self._uncuttable:
            return None
        found = await self._find_cuts(ctx, part, seam, walk)
        if found is None:
            return None
        if _met(seam):
            return None  # the ends met while the pieces were planned: nothing left to cut
        seam.cut = walk.done = True
        return await self._adopt(ctx, part, walk, found, positions)

    async def _find_cuts(
        self, ctx: RunContext, part: Partition, seam: Seam, walk: Walk
    ) -> list[Partition] | None:
        """Probe for the pieces of ``part``; None (and ``part`` marked uncuttable) if none."""
        pid = part.id
        total = seam.total or walk.total_hits or 0
        cfg, budget = self.cfg, self.budget
        fits = budget.piece_items(page_size=cfg.page_size, ends=self.ends)
        # Aimed below what fits, so that any piece up to it will do: pieces need not be even,
        # only small enough, and evening them out took 3-4 levels of probes a cut.
        pieces = budget.pieces(math.ceil(total / CUT_AIM), page_size=cfg.page_size, ends=self.ends)
        self._splitting.add(pid)
        try:
            pieces = min(MAX_PIECES, max(2, pieces))
            # One probe a cut point per round trip, not one a connection: a cut needs points
            # inside its own few days, and probes are requests too (at two a piece they were a
            # quarter of a dump's requests when short-lived tokens cut its partitions; at one a
            # piece plus the partition's count, a fifth: benchmarks/bench_token_life). The count
            # is the walk's latest x-totalHits, so the first level is the pieces - 1 cut points.
            found = await split(
                self.probe(ctx),
                part,
                first=FIRST_DAY,
                today=self.today,
                pieces=pieces,
                fanout=pieces,
                grain=max(cfg.page_size * self.ends, int(fits - total / pieces)),
                total=total or None,
            )
        finally:
            self._splitting.discard(pid)
        if found is None:
            self._uncuttable.add(pid)
            log.warning(
                "%s: its walk outlives the tokens (%.1fs), but it cannot be cut by "
                "date (its items changed on one day, or the probes found no cut)",
                walk.label,
                self.budget.seconds,
            )
            return None
        return found

    async def _adopt(
        self,
        ctx: RunContext,
        part: Partition,
        walk: Walk,
        found: list[Partition],
        positions: Positions,
    ) -> list[Partition]:
        """Put ``found`` in ``part``'s place in the plan, saved; return the pieces left to walk."""
        pid = part.id
        ctx.partitions[pid]["split_into"] = [p.id for p in found]
        positions.drop(pid)
        at = self.parts.index(part)
        self.parts[at : at + 1] = found
        # A resume walks the pieces, not the partition.
        await ctx.run.save_plan([[p.date_from, p.date_to] for p in self.parts])
        ctx.progress.partitions_total += len(found)
        log.info(
            "%s: cut into %s by change date (a walk may run %.1fs, %s)",
            walk.label,
            counted(len(found), "partition"),
            self.budget.seconds,
            counted(self.budget.pages, "page"),
        )
        todo = []
        for piece in found:
            if piece.id in ctx.done:  # finished before a crash: kept
                ctx.partitions[piece.id] = dict(ctx.done[piece.id])
                ctx.progress.partitions_done += 1
            else:
                todo.append(piece)
        return todo

    def probe(self, ctx: RunContext, times: list[float] | None = None) -> Probe:
        """A planning probe: how many items changed in ``[lo, hi]`` (one 1-item page); each
        probe's seconds are appended to ``times`` if given."""

        async def probe(lo: date | None, hi: date | None) -> int:
            params = {"pageSize": "1"}
            if lo is not None:
                params["from"] = lo.isoformat()
            if hi is not None:
                params["to"] = hi.isoformat()
            t0 = self.clock.monotonic()
            headers = await self.fetcher.fetch(ctx, params, None, None, label="nobb probe")
            if times is not None:
                times.append(self.clock.monotonic() - t0)
            assert headers is not None  # only walks can see page 1 come back
            return int(header(headers, TOTAL) or 0)

        return probe

    async def _plan(self, ctx: RunContext, wanted: int) -> tuple[list[Partition], int]:
        """Balanced partitions, largest first: with more partitions than walks at once, a big one
        started last would be walked while the other connections sit idle."""

        cfg = self.cfg
        times: list[float] = []
        probe = self.probe(ctx, times)
        # Imbalance below one page per end is not worth another round trip of probes.
        grain = cfg.page_size * self.ends
        found = await plan(
            probe,
            first=FIRST_DAY,
            last=self.today,
            parts=wanted,
            fanout=cfg.concurrency,
            grain=grain,
        )
        # walk_max_seconds: no partition planned longer than that, at the probes' page time
        # (a lower bound: a page of many items takes longer; running walks are cut as well).
        # The median: one probe that waited out a 429 does not make every page look slow.
        planned = WalkBudget(cfg.walk_max_seconds)
        planned.observe_page(statistics.median(times) if times else 0.0)
        need = planned.pieces(found.total, page_size=cfg.page_size, ends=self.ends)
        if need > wanted and wanted < MAX_PIECES:
            log.info(
                "nobb: %s to keep each walk within walk_max_seconds (%gs)",
                counted(min(need, MAX_PIECES), "partition"),
                cfg.walk_max_seconds,
            )
            parts = min(need, MAX_PIECES)
            fanout = max(cfg.concurrency, 2 * parts)
            found = await plan(
                probe, first=FIRST_DAY, last=self.today, parts=parts, fanout=fanout, grain=grain
            )
        log.info(
            "nobb: %s from %s in %s: %s",
            counted(len(found.partitions), "partition"),
            counted(found.probes, "probe"),
            counted(found.levels, "level"),
            found.counts,
        )
        ranked = sorted(zip(found.counts, found.partitions, strict=True), key=lambda c: -c[0])
        return [p for _, p in ranked], found.total


def _met(seam: Seam) -> bool:
    """Whether the ends have met by now (read after an await, where it may have changed)."""
    return seam.closed
