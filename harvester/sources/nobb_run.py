"""One run of the NOBB source: plan, walk every partition from both ends, fill, catch up, account.

``NobbSource.harvest`` (``nobb.py``, whose docstring tells the whole method) opens the client and
builds a ``NobbRun`` per run: the state the walks share (the planner, the walk budget, the walk
positions and when they were last saved, the ends finished per partition) lives here, not on the
source, so a source object holds only its configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from harvester.config import NobbConfig
from harvester.engine.clock import Clock
from harvester.engine.scheduler import run_pool
from harvester.errors import FetchError
from harvester.plan.edges import DayEdges
from harvester.plan.positions import Position, Positions
from harvester.plan.walk import Partition, Seam, Walk
from harvester.plan.walk_budget import WalkBudget
from harvester.sources.base import RunContext
from harvester.sources.nobb_checks import cross_check
from harvester.sources.nobb_fetch import PageFetcher
from harvester.sources.nobb_plan import PartitionPlanner
from harvester.sources.nobb_split import child_seam

__all__ = ["NobbRun", "Work"]

log = logging.getLogger("harvester.nobb")
Work = tuple[Partition, str, Seam]


@dataclass(slots=True, kw_only=True, eq=False)
class NobbRun:
    """One harvest of the NOBB source into ``ctx`` (module docstring)."""

    cfg: NobbConfig
    ctx: RunContext
    clock: Clock
    fetcher: PageFetcher
    edges: DayEdges  #: the reading of ``from`` / ``to`` the walks learn (edges.py)
    today: date  #: the run's one reading of the date (UTC): plans up to, catches up from
    budget: WalkBudget = field(init=False)
    planner: PartitionPlanner = field(init=False)
    positions: Positions = field(init=False)  #: the walks' positions, set once planned
    last_save: float = 0.0  #: when the positions were last saved (monotonic)
    ends: dict[str, int] = field(default_factory=dict)  #: partition id → ends finished
    expected: int | None = None  #: the catalogue's x-totalHits at planning

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.budget = WalkBudget(cfg.walk_max_seconds, ttl=cfg.token_ttl)
        self.planner = PartitionPlanner(
            cfg=cfg,
            fetcher=self.fetcher,
            clock=self.clock,
            edges=self.edges,
            ends=len(self._directions()),
            today=self.today,
            budget=self.budget,
        )

    async def harvest(self) -> bool:
        """Plan, walk, fill the boundaries and catch up; False when no plan was made (the run
        is incomplete: ``--resume`` plans again)."""
        ctx = self.ctx
        planned = await self.planner.start(ctx)
        if planned is None:
            return False
        parts, self.expected = planned
        for pid, result in ctx.done.items():
            ctx.partitions[pid] = dict(result)
            ctx.progress.partitions_done += 1
        parts_left = [p for p in parts if p.id not in ctx.done]
        ctx.progress.partitions_total = len(parts) + 1
        ctx.progress.expected = self.expected
        self.positions = Positions(ctx.positions)
        self.last_save = self.clock.monotonic()
        seams = {p.id: Seam() for p in parts_left}
        for pid, seam in seams.items():
            self.positions.restore(pid, seam)
        work: list[Work] = [(p, d, seams[p.id]) for p in parts_left for d in self._directions()]
        await run_pool(
            work,
            lambda item, add: self._walk(item[0], item[1], item[2], add=add),
            concurrency=self.cfg.concurrency,
        )
        # Every boundary, the pieces' of cut partitions too (a sync has some only when cut).
        await self._fill_boundaries()
        catch_up = Partition(self.edges.since(self.today).isoformat(), None)
        fetcher = self.fetcher
        fetcher.latest = fetcher.fingerprints  # start-day fingerprints, then the catch-up's finds
        await self._walk(catch_up, "asc", Seam(), catch_up=True)
        fetcher.latest = None
        if fetcher.fingerprints.newer and ctx.mode == "dump":
            replaced = await ctx.run.supersede(fetcher.fingerprints.newer)
            ctx.checks["replaced_by_newer_version"] = replaced
        if note := fetcher.fingerprints.note():
            ctx.checks["note"] = note
        return True

    async def _fill_boundaries(self) -> None:
        """Walk each boundary of the plan again (``PartitionPlanner.fills``) unless the reading
        of ``from`` / ``to`` is proven to tile (edges.py)."""
        ctx = self.ctx
        if self.edges.tiles:
            return
        fills = self.planner.fills()
        self.edges.fills = len(fills)
        ctx.progress.partitions_total += len(fills)
        todo = [p for p in fills if f"edge:{p.id}" not in ctx.done]
        await run_pool(
            todo,
            lambda p, add: self._walk(p, "asc", Seam(), fill=True),
            concurrency=self.cfg.concurrency,
        )

    def account(self) -> None:
        """The cross-checks into ``ctx.checks`` (``nobb_checks.cross_check``)."""
        cross_check(self.ctx, self.expected, edges=self.edges, budget=self.budget)

    def _directions(self) -> tuple[str, ...]:
        return ("asc", "desc") if self.cfg.two_ended else ("asc",)

    async def _cut(
        self, part: Partition, seam: Seam, walk: Walk, add: Callable[[Work], None]
    ) -> bool:
        """Cut ``part`` if it can be (``PartitionPlanner.cut``) and queue its pieces' walks;
        True if this end is to stop (cut, by this end or the other), False to walk on."""
        pieces = await self.planner.cut(self.ctx, part, seam, walk, self.positions)
        if pieces is None:
            return False
        for piece in pieces:
            piece_seam = child_seam(seam)
            for direction in self._directions():
                add((piece, direction, piece_seam))
        return True

    async def _walk(
        self,
        part: Partition,
        direction: str,
        seam: Seam,
        *,
        catch_up: bool = False,
        fill: bool = False,
        add: Callable[[Work], None] | None = None,
    ) -> None:
        walk = Walk(
            part,
            "asc" if direction == "asc" else "desc",
            seam,
            page_size=self.cfg.page_size,
            filters={"suppliers": ",".join(self.cfg.suppliers)} if self.cfg.suppliers else None,
        )
        pid = f"catch-up:{part.id}" if catch_up else f"edge:{part.id}" if fill else part.id
        result = self.ctx.partitions.setdefault(pid, {"ok": True, "catch_up": catch_up})
        if fill:
            result["edge_fill"] = True
        try:
            written = await self._chain(walk, pid, direction, seam, catch_up=catch_up, add=add)
        except FetchError as exc:
            log.error("%s failed: %s", walk.label, exc)
            result.update(ok=False, error=str(exc))
            self.ctx.progress.partitions_failed += 1
            return
        await self._account(walk, pid, direction, result, written, catch_up=catch_up, fill=fill)

    async def _chain(
        self,
        walk: Walk,
        pid: str,
        direction: str,
        seam: Seam,
        *,
        catch_up: bool,
        add: Callable[[Work], None] | None,
    ) -> int:
        """Walk ``walk``'s token chain from its saved position (or its start) to its end or cut.

        Returns the number of records written; a ``FetchError`` ends the walk and propagates.
        """
        ctx, part = self.ctx, walk.partition
        params, began = self._start(walk, None if catch_up else self.positions.get(pid, direction))
        written = 0
        budget, chain_pages = self.budget, 0
        while params is not None:
            # Cut before a page that would outlive the budget (``walk_budget.py``).
            if (
                add is not None
                and chain_pages
                and not seam.closed
                and self.planner.must_cut(
                    seam, walk, elapsed=self.clock.time() - began, pages=chain_pages
                )
                and await self._cut(part, seam, walk, add)
            ):
                break
            counter = [0]
            sent = self.clock.time()
            headers = await self.fetcher.fetch(ctx, params, walk, counter, label=walk.label)
            written += counter[0]
            if headers is None:  # page 1 came back: the chain had died when this was served
                if chain_pages:
                    # Bounded by now, not by ``sent``: the request may have queued for a
                    # connection (or a retry) while the chain aged, so only the answer's
                    # arrival is surely no earlier than the moment the server saw it dead.
                    budget.observe_expiry(self.clock.time() - began)
                if add is not None and await self._cut(part, seam, walk, add):
                    break
                if seam.closed:
                    break
                params, began, chain_pages = walk.restart(), self.clock.time(), 0
                continue
            budget.observe_page(self.clock.time() - sent)
            chain_pages += 1
            params = walk.on_page_end(headers)
            if params is not None and not catch_up and walk.position is not None:
                self.positions.update(pid, direction, walk.position, params.get("pageToken"), began)
                await self._maybe_save()
        return written

    def _start(self, walk: Walk, saved: Position | None) -> tuple[dict[str, str] | None, float]:
        """The first request and when its chain began: on from a saved, still usable token;
        else from the saved position (or the start) with a new chain."""
        began = self.clock.time()
        if saved is not None and saved.token and saved.usable(began, self.cfg.token_ttl):
            return walk.continue_after(saved.key, saved.token), saved.began
        if saved is not None:
            walk.resume_from(saved.key)
        return walk.first_request(), began

    async def _account(
        self,
        walk: Walk,
        pid: str,
        direction: str,
        result: dict[str, object],
        written: int,
        *,
        catch_up: bool,
        fill: bool,
    ) -> None:
        """Record one finished end of ``pid``; the last end counts it done and checkpoints it."""
        ctx = self.ctx
        result[f"{direction}_pages"] = walk.pages
        result[f"{direction}_written"] = written
        result[f"{direction}_restarts"] = walk.restarts
        if walk.total_hits is not None:
            result["total_hits"] = walk.total_hits
        ends = self.ends[pid] = self.ends.get(pid, 0) + 1
        if ends == (1 if fill else len(self._directions())) and not catch_up:
            ctx.progress.partitions_done += 1
            if result.get("split_into"):
                self.positions.drop(pid)  # its pieces hold its items; never checkpointed done
            elif result.get("ok"):
                self.positions.drop(pid)
                await ctx.run.checkpoint({pid: result})

    async def _maybe_save(self) -> None:
        """Every ``checkpoint_every`` seconds: make the walks' positions durable (positions.py)."""
        ctx = self.ctx
        now = self.clock.monotonic()
        if now - self.last_save < ctx.checkpoint_every:
            return
        self.last_save = now  # first, so the walks that reach here meanwhile do not save too
        await ctx.run.save_positions(self.positions.snapshot())
