"""The NOBB Export API source: partitions by change date, each walked from both ends at once.

A dump plans partitions from ``x-totalHits`` probes (``partitions.py``), walks each from both ends
(``walk.py``: exactly-once at the seam, silent token expiry detected and recovered), and finally
walks a catch-up partition ``from`` the run's start date, for items that changed while the dump
ran; an item it meets that was written before it changed replaces its old line in the shards
(``latest.py``), so a dump holds every item once, in its latest version. Whichever way the server
reads ``from`` / ``to``, nothing is lost (``edges.py``): the walks learn the reading from the items'
change dates, a dump whose walks did not prove both ends inclusive walks each boundary again, and
open ranges ask ``from`` a day early until it is proven inclusive. The cross-checks name every
difference between what was written and the ``x-totalHits`` counts. A sync walks ``from`` =
the last complete run's date minus ``sync_overlap_days``. Items stream from the body straight
into the sink (``parse/nobb.py``); a page retried after a failure part-way re-reads only what the
sink already has, and its key set drops the repeats. Walk positions are checkpointed
(``positions.py``).

A walk must finish inside its tokens' life. ``walk_budget.py`` holds how long a walk may run
(``walk_max_seconds``, lowered to what expiries teach) and the page time measured; planning
(``nobb_plan.py``) makes enough partitions for it, and a walk about to pass it, or whose tokens
died, has its partition cut by change date (``nobb_split.py``): both ends stop, the pieces join
the pool starting from the seam, and the checkpoint's plan lists the pieces, so ``--resume``
walks them.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import orjson

from harvester.config import NobbConfig
from harvester.engine.clock import Clock, SystemClock
from harvester.engine.http import HttpClient
from harvester.engine.limiter import RateLimiter
from harvester.engine.retry import RetryPolicy
from harvester.engine.scheduler import run_pool
from harvester.errors import FetchError
from harvester.plan.edges import DayEdges
from harvester.plan.positions import Positions
from harvester.plan.walk import Partition, Seam, Walk
from harvester.plan.walk_budget import WalkBudget
from harvester.sources.base import RunContext
from harvester.sources.endpoint import check_certificate, http_settings
from harvester.sources.nobb_fetch import PageFetcher
from harvester.sources.nobb_plan import PartitionPlanner
from harvester.sources.nobb_split import child_seam

__all__ = ["NobbSource"]

log = logging.getLogger("harvester.nobb")
Work = tuple[Partition, str, Seam]


class NobbSource:
    """Harvests ``/api/v2/items`` into a run (see the module docstring)."""

    name = "nobb"

    def __init__(
        self,
        cfg: NobbConfig,
        *,
        clock: Clock | None = None,
        assume_edges: tuple[bool, bool] | None = None,
    ) -> None:
        """``assume_edges`` (``from`` inclusive, ``to`` inclusive) takes a reading as known
        instead of measuring it: only a benchmark's baseline does (edges.py)."""
        self._assume = assume_edges
        self.cfg = cfg
        self.clock = clock or SystemClock()
        raw = f"{cfg.username.reveal()}:{cfg.password.reveal()}".encode()
        self._auth = (("Authorization", "Basic " + base64.b64encode(raw).decode()),)
        self._policy = RetryPolicy(attempts=max(1, cfg.retries))

    def key_of(self, line: bytes) -> int:
        key = orjson.loads(line)["nobbNumber"]
        return int(key)

    def state_from(self, manifest: Mapping[str, object]) -> dict[str, object]:
        """The high-water mark is the day the run started (as ``harvest`` leaves it)."""
        started = datetime.fromisoformat(str(manifest["started"])).astimezone(UTC)
        return {"high_water": started.date().isoformat()}

    async def check(self) -> None:
        await check_certificate(self.cfg, self.name)

    async def harvest(self, ctx: RunContext) -> None:
        cfg = self.cfg
        settings = http_settings(cfg, self.name)
        self._limiter = RateLimiter.from_setting(
            cfg.rate_limit, clock=self.clock, name="nobb", key="nobb.rate_limit"
        )
        ctx.rate_report = self._limiter.report
        ctx.progress.rate = self._limiter.report
        assume = self._assume
        edges = self._edges = (
            DayEdges() if assume is None else DayEdges(assume[0], assume[1], fixed=True)
        )
        async with HttpClient(settings, base_url=cfg.base_url, report=ctx.transport) as http:
            self._fetcher = PageFetcher(
                http=http, limiter=self._limiter, auth=self._auth, policy=self._policy,
                clock=self.clock, edges=edges,
                start_day=tuple(d.isoformat() for d in {ctx.started.date(),
                                                        edges.since(ctx.started.date())}),
            )  # fmt: skip
            # The run's one reading of the date (UTC): a run started at 23:59:59.9 plans up to,
            # catches up from and records as its high-water mark the same day.
            today = ctx.started.date()
            self._budget = WalkBudget(cfg.walk_max_seconds, ttl=cfg.token_ttl)
            planner = self._planner = PartitionPlanner(
                cfg=cfg, fetcher=self._fetcher, clock=self.clock, edges=edges,
                ends=len(self._directions()), today=today, budget=self._budget,
            )  # fmt: skip
            start_day = ctx.started.date()
            planned = await planner.start(ctx)
            if planned is None:  # no plan, no walks: incomplete, --resume re-plans
                return
            parts, expected = planned
            for pid, result in ctx.done.items():
                ctx.partitions[pid] = dict(result)
                ctx.progress.partitions_done += 1
            parts_left = [p for p in parts if p.id not in ctx.done]
            ctx.progress.partitions_total = len(parts) + 1
            ctx.progress.expected = expected
            self._positions = Positions(ctx.positions)
            self._last_save = self.clock.monotonic()
            seams = {p.id: Seam() for p in parts_left}
            for pid, seam in seams.items():
                self._positions.restore(pid, seam)
            work: list[Work] = [(p, d, seams[p.id]) for p in parts_left for d in self._directions()]
            self._ends: dict[str, int] = {}
            await run_pool(
                work,
                lambda item, add: self._walk(ctx, item[0], item[1], item[2], add=add),
                concurrency=cfg.concurrency,
            )
            # Every boundary, the pieces' of cut partitions too (a sync has some only when cut).
            await self._fill_boundaries(ctx)
            catch_up = Partition(edges.since(start_day).isoformat(), None)
            fetcher = self._fetcher
            # The start day's fingerprints, then what the catch-up finds.
            fetcher.latest = fetcher.fingerprints
            await self._walk(ctx, catch_up, "asc", Seam(), catch_up=True)
            fetcher.latest = None
            if fetcher.fingerprints.newer and ctx.mode == "dump":
                replaced = await ctx.run.supersede(fetcher.fingerprints.newer)
                ctx.checks["replaced_by_newer_version"] = replaced
            if note := fetcher.fingerprints.note():
                ctx.checks["note"] = note
        self._account(ctx, expected)
        ctx.next_state["high_water"] = start_day.isoformat()

    async def _fill_boundaries(self, ctx: RunContext) -> None:
        """Walk each boundary of the plan again (``PartitionPlanner.fills``) unless the reading
        of ``from`` / ``to`` is proven to tile (edges.py)."""
        if self._edges.tiles:
            return
        fills = self._planner.fills()
        self._edges.fills = len(fills)
        ctx.progress.partitions_total += len(fills)
        todo = [p for p in fills if f"edge:{p.id}" not in ctx.done]
        await run_pool(todo, lambda p, add: self._walk(ctx, p, "asc", Seam(), fill=True),
                       concurrency=self.cfg.concurrency)  # fmt: skip

    def _account(self, ctx: RunContext, planned: int | None) -> None:
        """The cross-checks: every record written is accounted for, or the difference named."""
        results = ctx.partitions.values()
        # A cut partition's items are counted by its pieces.
        main = [r for r in results if not any(r.get(k) for k in ("catch_up", "edge_fill",
                                                                  "split_into"))]  # fmt: skip
        hits = sum(int(str(r.get("total_hits", 0))) for r in main)
        only = {kind: sum(int(str(r.get("asc_written", 0))) for r in results if r.get(kind))
                for kind in ("catch_up", "edge_fill")}  # fmt: skip
        written = ctx.records_before + ctx.progress.records  # a resumed run's too
        checks = ctx.checks
        checks["x_totalHits_sum"] = hits
        checks["written"] = written
        checks["difference"] = written - hits
        checks["catch_up_written"] = only["catch_up"]
        checks["edge_fill_written"] = only["edge_fill"]
        checks["edges"] = self._edges.describe()
        checks["tokens"] = self._budget.describe()
        checks["accepted_202"] = ctx.progress.accepted  # pages answered 202 and asked again
        notes = [str(checks["note"])] if checks.get("note") else []  # e.g. newer versions kept
        if only["edge_fill"]:
            notes.append(f"{only['edge_fill']} items only the boundary walks found (an end of "
                         "from/to is exclusive)")  # fmt: skip
        if only["catch_up"]:
            notes.append(f"{only['catch_up']} items first written by the catch-up (changed "
                         "during the run)")  # fmt: skip
        other = written - hits - only["edge_fill"] - only["catch_up"]
        if other:
            notes.append(f"{other:+} items the partitions' x-totalHits do not explain (counts "
                         "changed while walking)")  # fmt: skip
        if planned is not None:
            checks["planned_total"] = planned
            missing = planned - written
            if missing > 0:
                checks["unaccounted"] = missing
                notes.append(f"{missing} items of the catalogue's x-totalHits at planning were "
                             "not written: removed during the run, or lost")  # fmt: skip
                log.warning("nobb: %d items of the planned total were not written", missing)
        if notes:
            checks["note"] = "; ".join(notes)

    def _directions(self) -> tuple[str, ...]:
        return ("asc", "desc") if self.cfg.two_ended else ("asc",)

    async def _cut(
        self, ctx: RunContext, part: Partition, seam: Seam, walk: Walk, add: Callable[[Work], None]
    ) -> bool:
        """Cut ``part`` if it can be (``PartitionPlanner.cut``) and queue its pieces' walks;
        True if this end is to stop (cut, by this end or the other), False to walk on."""
        pieces = await self._planner.cut(ctx, part, seam, walk, self._positions)
        if pieces is None:
            return False
        for piece in pieces:
            piece_seam = child_seam(seam)
            for direction in self._directions():
                add((piece, direction, piece_seam))
        return True

    async def _walk(
        self,
        ctx: RunContext,
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
        result = ctx.partitions.setdefault(pid, {"ok": True, "catch_up": catch_up})
        if fill:
            result["edge_fill"] = True
        saved = None if catch_up else self._positions.get(pid, direction)
        began = self.clock.time()
        params: dict[str, str] | None
        if saved is not None and saved.token and saved.usable(began, self.cfg.token_ttl):
            params, began = walk.continue_after(saved.key, saved.token), saved.began
        else:
            if saved is not None:
                walk.resume_from(saved.key)
            params = walk.first_request()
        written = 0
        budget, chain_pages = self._budget, 0
        try:
            while params is not None:
                # Cut before a page that would outlive the budget (``walk_budget.py``).
                if (add is not None and chain_pages and not seam.closed
                        and self._planner.must_cut(seam, walk, elapsed=self.clock.time() - began,
                                                   pages=chain_pages)
                        and await self._cut(ctx, part, seam, walk, add)):  # fmt: skip
                    break
                counter = [0]
                sent = self.clock.time()
                headers = await self._fetcher.fetch(ctx, params, walk, counter,
                                                    label=walk.label)  # fmt: skip
                written += counter[0]
                if headers is None:  # page 1 came back: the chain had died when this was served
                    if chain_pages:
                        # Bounded by now, not by ``sent``: the request may have queued for a
                        # connection (or a retry) while the chain aged, so only the answer's
                        # arrival is surely no earlier than the moment the server saw it dead.
                        budget.observe_expiry(self.clock.time() - began)
                    if add is not None and await self._cut(ctx, part, seam, walk, add):
                        break
                    if seam.closed:
                        break
                    params, began, chain_pages = walk.restart(), self.clock.time(), 0
                    continue
                budget.observe_page(self.clock.time() - sent)
                chain_pages += 1
                params = walk.on_page_end(headers)
                if params is not None and not catch_up and walk.position is not None:
                    self._positions.update(pid, direction, walk.position,
                                           params.get("pageToken"), began)  # fmt: skip
                    await self._maybe_save(ctx)
        except FetchError as exc:
            log.error("%s failed: %s", walk.label, exc)
            result.update(ok=False, error=str(exc))
            ctx.progress.partitions_failed += 1
            return
        result[f"{direction}_pages"] = walk.pages
        result[f"{direction}_written"] = written
        result[f"{direction}_restarts"] = walk.restarts
        if walk.total_hits is not None:
            result["total_hits"] = walk.total_hits
        ends = self._ends[pid] = self._ends.get(pid, 0) + 1
        if ends == (1 if fill else len(self._directions())) and not catch_up:
            ctx.progress.partitions_done += 1
            if result.get("split_into"):
                self._positions.drop(pid)  # its pieces hold its items; never checkpointed done
            elif result.get("ok"):
                self._positions.drop(pid)
                await ctx.run.checkpoint({pid: result})

    async def _maybe_save(self, ctx: RunContext) -> None:
        """Every ``checkpoint_every`` seconds: make the walks' positions durable (positions.py)."""
        now = self.clock.monotonic()
        if now - self._last_save < ctx.checkpoint_every:
            return
        self._last_save = now  # first, so the walks that reach here meanwhile do not save too
        await ctx.run.save_positions(self._positions.snapshot())
