"""One run of the DBK source: the windows of ``[start, end)``, then the catch-up to now.

``DbkSource.harvest`` (``dbk.py``, whose docstring tells the whole method) opens the client and
the converter pool and builds a ``DbkRun`` per run: what the windows share (the edge reading,
the cap a refusal stated, the windows finished since the last checkpoint, the counters the
manifest's checks report) lives here, not on the source, so a source object holds only its
configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from harvester.config import DbkConfig
from harvester.engine.clock import Clock
from harvester.engine.scheduler import run_pool
from harvester.errors import FetchError
from harvester.parse.onix_pool import OnixConverter
from harvester.plan.edges import SecondEdges
from harvester.plan.windows import Window, WindowPlanner
from harvester.sources.base import Key, RunContext
from harvester.sources.dbk_auth import DbkSession
from harvester.sources.dbk_fetch import Fetched, WindowFetcher
from harvester.sources.endpoint import Endpoint
from harvester.store.latest import LatestVersions

__all__ = ["DbkRun"]

log = logging.getLogger("harvester.dbk")


@dataclass(slots=True, kw_only=True, eq=False)
class DbkRun:
    """One harvest of the DBK source into ``ctx`` (module docstring)."""

    cfg: DbkConfig
    ctx: RunContext
    clock: Clock
    endpoint: Endpoint
    session: DbkSession
    conv: OnixConverter
    edges: SecondEdges  #: the reading of ``updatedFrom`` / ``updatedTo`` (edges.py)
    start: int  #: the run's range, ``[start, end)`` (then the catch-up to now)
    end: int
    checkpoint_records: int  #: a checkpoint once the windows finished hold this many records
    fetcher: WindowFetcher = field(init=False)
    main: WindowPlanner | None = None  #: the planner of ``[start, end)``, once made
    stated_cap: int | None = None  #: the cap a refusal stated, for every planner after
    known: int | None = None  #: a second some answer showed a product in (``_exactly``)
    since_checkpoint: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    pending_records: int = 0  #: records of the windows finished since the last checkpoint
    last_checkpoint: float = 0.0  #: when (monotonic)
    latest: LatestVersions | None = None  #: during the catch-up only
    changed: int = 0  #: catch-up products the run had already written (changed during it)
    replaced: int = 0  #: lines replaced by a newer version
    overlap_repeats: int = 0  #: products from the overlap seconds, a neighbour's
    refusals: int = 0  #: windows refused as too many

    def __post_init__(self) -> None:
        self.fetcher = WindowFetcher(
            cfg=self.cfg,
            endpoint=self.endpoint,
            session=self.session,
            conv=self.conv,
            on_record=self._on_record,
            floor=self.start,
        )
        self.last_checkpoint = self.clock.monotonic()

    async def harvest(
        self, learned: list[tuple[int, int, int]], done: list[tuple[int, int]]
    ) -> list[tuple[int, int, int]]:
        """Every window, then the catch-up; the windows covered (for the learned density)."""
        ctx, cfg, start, end = self.ctx, self.cfg, self.start, self.end
        await self.session.bearer()  # bad credentials stop the source before any window
        main = self.main = WindowPlanner(
            start,
            end,
            cap=cfg.max_products_per_response,
            lanes=cfg.concurrency,
            learned=learned,
            done=done,
        )
        await self._pool(main, catch_up=False)
        await self._flush_checkpoints()
        covered = list(main.covered)
        # Dump and sync alike catch up from the run's start second to now: what changed
        # in the very second the run started, and while it ran.
        if not main.failed and not main.unsplittable:
            now = int(self.clock.time()) + 1
            ctx.progress.span_total = max(end, now) - start
            late = WindowPlanner(
                end,
                max(end, now),
                cap=cfg.max_products_per_response,
                lanes=cfg.concurrency,
                learned=learned,
            )
            if self.stated_cap is not None:
                late.limit(self.stated_cap)
            latest = self.latest = LatestVersions()
            await self._pool(late, catch_up=True)
            covered += late.covered
            self.latest = None
            if latest.newer:
                self.replaced = await ctx.run.supersede(latest.newer)
            if note := latest.note():
                ctx.checks["note"] = note
        return covered

    def checks(self) -> dict[str, object]:
        """The manifest's cross-checks of this run."""
        main, ctx = self.main, self.ctx
        assert main is not None, "harvest first"
        return {
            "windows": main.requests,
            "unsplittable": [w.id for w in main.unsplittable],
            "written": ctx.records_before + ctx.progress.records,
            "changed_during_run": self.changed,
            "replaced_by_newer_version": self.replaced,
            "overlap_repeats": self.overlap_repeats,
            "refused_as_too_many": self.refusals,
            "edges": self.edges.describe(),
            "authentications": self.session.authentications,
            "token_refreshes": self.session.refreshes,
        }

    async def _pool(self, planner: WindowPlanner, *, catch_up: bool) -> None:
        """Fetch windows until the planner is finished, ``concurrency`` at once (``run_pool``).

        The planner knows the next windows (a cut window's parts first) only once earlier ones
        come back, so they are taken at the start and after each window, whose handler ``add``s
        them. The pool ends with nothing queued or running: the planner is finished then.
        """
        lanes = self.cfg.concurrency

        def ready() -> list[Window]:
            # Taken windows count as in flight in the planner, queued or running: at most
            # ``lanes`` of them, one a worker.
            out: list[Window] = []
            while planner.in_flight < lanes and (w := planner.take()) is not None:
                out.append(w)
            return out

        async def fetch(w: Window, add: Callable[[Window], None]) -> None:
            await self._harvest_window(planner, w, catch_up=catch_up)
            for nxt in ready():
                add(nxt)

        try:
            await run_pool(ready(), fetch, concurrency=lanes)
        except BaseExceptionGroup as group:
            # One window's fatal error (AuthError, a disk error) stops the source: report it
            # as itself, not wrapped in a group.
            raise group.exceptions[0] from None

    async def _harvest_window(self, planner: WindowPlanner, w: Window, *, catch_up: bool) -> None:
        """Fetch window ``w`` (again, exactly, if the edges learned say it was asked wide), then
        mark it complete, failed or cut off in ``planner`` and checkpoint when due."""
        ctx = self.ctx
        try:
            fetched = await self._fetch_settled(planner, w)
        except FetchError as exc:
            log.error("dbk window %s failed: %s", w.id, exc)
            planner.fail(w, str(exc))
            ctx.partitions[w.id] = {"ok": False, "start": w.start, "end": w.end, "error": str(exc)}
            ctx.progress.partitions_failed += 1
            return
        if fetched.refused is not None:
            # Refused as too many (413, or a 400 saying so): split exactly like a full answer,
            # planning from here on for the cap the message states.
            log.info(
                "dbk window %s refused as too many products (%s): split", w.id, fetched.refused
            )
            if fetched.stated_cap is not None:
                planner.limit(fetched.stated_cap)
                self.stated_cap = min(self.stated_cap or fetched.stated_cap, fetched.stated_cap)
            self.refusals += 1
        if fetched.refused is not None or fetched.count >= planner.cap:
            self._cut_off(planner, w, fetched)
        else:
            await self._complete(planner, w, fetched, catch_up=catch_up)

    async def _fetch_settled(self, planner: WindowPlanner, w: Window) -> Fetched:
        """Fetch ``w``, asked again while the edges learned meanwhile change what was asked."""
        full = w.width > 1  # a full one-second window is read whole: it cannot be split
        while True:
            bounds = self.edges.bounds(w.start, w.end)
            fetched = await self.fetcher.fetch(self.ctx, w, stop_when_full=full, bounds=bounds)
            self.edges.observe(bounds, fetched.at_edges, seconds=fetched.seconds)
            self.known = fetched.inside if fetched.inside is not None else self.known
            again = fetched.count >= planner.cap or fetched.refused is not None
            if not again or self.edges.bounds(w.start, w.end) == bounds:
                break
            # Full, and asked with an overlap second the reading now known (from this
            # response or another) leaves out: ask again exactly before splitting, so a
            # dense neighbour never makes a window look full. At most twice (two ends).
            log.info("dbk edges now %s; window %s again", self.edges.describe(), w.id)
        if fetched.refused is not None and w.width == 1 and bounds != (w.start, w.end):
            fetched = await self._exactly(w, fetched)
        return fetched

    def _cut_off(self, planner: WindowPlanner, w: Window, fetched: Fetched) -> None:
        """A full or refused ``w``: split it in ``planner``, or (one second) record it failed."""
        if planner.truncated(w, fetched.seen):
            return
        why = (
            f"{fetched.count} or more products share one second (the response cap is "
            f"{planner.cap}): this window cannot be split, some may be missing"
            if fetched.refused is None
            else f"the server refuses this one-second window as too many products "
            f"({fetched.refused}): it cannot be split, its products are missing"
        )
        log.error("dbk window %s: %s", w.id, why)
        self.ctx.partitions[w.id] = {"ok": False, "start": w.start, "end": w.end, "error": why}

    async def _complete(
        self, planner: WindowPlanner, w: Window, fetched: Fetched, *, catch_up: bool
    ) -> None:
        """Count ``w`` done, record its result, and checkpoint when enough is pending."""
        ctx = self.ctx
        planner.complete(w, fetched.count - fetched.outside)
        ctx.progress.partitions_done += 1
        ctx.progress.span_done += w.width
        result: dict[str, object] = {
            "ok": True,
            "start": w.start,
            "end": w.end,
            "count": fetched.count - fetched.outside,
            "written": fetched.written,
        }
        self.overlap_repeats += fetched.outside
        if catch_up:
            result["catch_up"] = True
            self.changed += max(0, fetched.count - fetched.outside - fetched.written)
        ctx.partitions[w.id] = result
        self.since_checkpoint.append((w.id, result))
        self.pending_records += fetched.written
        if (
            self.pending_records >= self.checkpoint_records
            or self.clock.monotonic() - self.last_checkpoint >= ctx.checkpoint_every
        ):
            await self._flush_checkpoints()

    async def _exactly(self, w: Window, refused: Fetched) -> Fetched:
        """A one-second window refused with its overlap second (an unproven reading sends
        ``updatedFrom`` a second early): that neighbour may be the crowded one. Ask for the
        second alone; if a product stamped with it comes back, ``updatedFrom`` is proven
        inclusive and the answer is exact. Otherwise the refusal stands (an empty answer may
        be an exclusive reading leaving the second out)."""
        ctx = self.ctx
        exact = (w.start, w.end)
        fetched = await self.fetcher.fetch(ctx, w, stop_when_full=False, bounds=exact)
        self.edges.observe(exact, fetched.at_edges, seconds=fetched.seconds)
        if fetched.refused is None and not self.edges.from_inclusive and self.known is not None:
            # Empty: prove the reading on a second known to hold a product, asked alone.
            t = self.known
            probe = Window(t, t + 1)
            seen = await self.fetcher.fetch(ctx, probe, stop_when_full=False, bounds=(t, t + 1))
            self.edges.observe((t, t + 1), seen.at_edges, seconds=seen.seconds)
        if fetched.refused is None and self.edges.from_inclusive:
            return fetched
        return refused

    def _on_record(self, key: Key, line: bytes, new: bool) -> None:
        """Catch-up only: remember newer versions of records written before they changed."""
        if self.latest is None:
            return
        if new:
            self.latest.written(key)
        else:
            self.latest.met_again(key, line)

    async def _flush_checkpoints(self) -> None:
        done, self.since_checkpoint = self.since_checkpoint, []
        self.pending_records = 0
        self.last_checkpoint = self.clock.monotonic()
        if done:
            await self.ctx.run.checkpoint(
                dict(done)
            )  # one commit for the group: one shard, not many
