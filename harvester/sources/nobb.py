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
(``walk_max_seconds``, lowered to what expiries teach) and the page time measured; planning makes
enough partitions for it, and a walk about to pass it, or whose tokens died, has its partition
cut by change date (``nobb_split.py``): both ends stop, the pieces join the pool starting from
the seam, and the checkpoint's plan lists the pieces, so ``--resume`` walks them.
"""

from __future__ import annotations

import base64
import logging
import statistics
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import orjson

from harvester.config import NobbConfig
from harvester.engine.clock import Clock, SystemClock
from harvester.engine.http import HttpClient
from harvester.engine.limiter import RateLimiter
from harvester.engine.retry import RetryPolicy
from harvester.engine.scheduler import run_pool
from harvester.errors import FetchError
from harvester.plan.edges import DayEdges
from harvester.plan.partitions import Probe, plan
from harvester.plan.positions import Positions
from harvester.plan.walk import TOTAL, Partition, Seam, Walk, header
from harvester.plan.walk_budget import WalkBudget
from harvester.plural import counted
from harvester.sources.base import RunContext
from harvester.sources.endpoint import check_certificate, http_settings
from harvester.sources.nobb_fetch import PageFetcher
from harvester.sources.nobb_split import child_seam, split

__all__ = ["NobbSource"]

log = logging.getLogger("harvester.nobb")
FIRST_DAY = date(1990, 1, 1)
#: Most pieces one cut (or the first plan, for walk_max_seconds) makes; a piece that still does
#: not fit is cut again.
MAX_PIECES = 64
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

    async def check(self) -> None:
        await check_certificate(self.cfg, self.name)

    async def harvest(self, ctx: RunContext) -> None:
        cfg = self.cfg
        settings = http_settings(cfg, self.name)
        self._limiter = RateLimiter.from_setting(
            cfg.rate_limit, clock=self.clock, name="nobb", key="nobb.rate_limit"
        )
        ctx.rate_report = self._limiter.report
        ctx.progress.limit = cfg.rate_limit
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
            today = datetime.fromtimestamp(self.clock.time(), UTC).date()  # the run's clock, UTC
            self._today = today
            self._budget = WalkBudget(cfg.walk_max_seconds)
            self._splitting: set[str] = set()
            self._uncuttable: set[str] = set()
            start_day = ctx.started.date()
            if ctx.mode == "sync":
                last = ctx.source_state.get("high_water")
                since = (
                    date.fromisoformat(str(last)) - timedelta(days=cfg.sync_overlap_days)
                    if last
                    else FIRST_DAY
                )
                parts = [Partition(edges.since(since).isoformat(), None)]
                if ctx.plan is not None:  # a resumed sync that was cut: the pieces it listed
                    parts = [Partition(lo, hi) for lo, hi in ctx.plan]
                self._fetcher.floor = since.isoformat()
                expected = None
            elif ctx.plan is not None:
                parts, expected = [Partition(lo, hi) for lo, hi in ctx.plan], None
            else:
                wanted = cfg.partitions or max(1, cfg.concurrency // len(self._directions()))
                try:
                    parts, expected = await self._plan(ctx, today, wanted)
                except FetchError as exc:  # no plan, no walks: incomplete, --resume re-plans
                    log.error("nobb planning failed: %s", exc)
                    ctx.partitions["plan"] = {"ok": False, "error": str(exc)}
                    return
                if ctx.save_plan is not None:
                    await ctx.save_plan([[p.date_from, p.date_to] for p in parts])
            for pid, result in ctx.done.items():
                ctx.partitions[pid] = dict(result)
                ctx.progress.partitions_done += 1
            self._parts = list(parts)  # the plan as it stands (cut partitions replaced)
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
            await self._fill_boundaries(ctx, self._parts)
            catch_up = Partition(edges.since(start_day).isoformat(), None)
            fetcher = self._fetcher
            fetcher.latest = fetcher.prints  # start-day fingerprints, then the catch-up's finds
            await self._walk(ctx, catch_up, "asc", Seam(), catch_up=True)
            fetcher.latest = None
            if fetcher.prints.newer and ctx.supersede is not None and ctx.mode == "dump":
                replaced = await ctx.supersede(fetcher.prints.newer)
                ctx.checks["replaced_by_newer_version"] = replaced
            if note := fetcher.prints.note():
                ctx.checks["note"] = note
        self._account(ctx, expected)
        ctx.next_state["high_water"] = start_day.isoformat()

    async def _fill_boundaries(self, ctx: RunContext, parts: list[Partition]) -> None:
        """Walk each boundary ``x`` again as ``x-1..x+2`` unless the reading is proven to tile.

        Partitions ``..x`` and ``x+1..`` miss day ``x``, ``x+1`` or both when an end is
        exclusive; ``from = x-1``, ``to = x+2`` holds both days under every reading (edges.py).
        """
        if self._edges.tiles:
            return
        day = timedelta(days=1)
        bounds = sorted({date.fromisoformat(p.date_to) for p in parts if p.date_to})
        fills = [Partition((x - day).isoformat(), (x + 2 * day).isoformat()) for x in bounds]
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

    async def _plan(self, ctx: RunContext, today: date, wanted: int) -> tuple[list[Partition], int]:
        """Balanced partitions, largest first: with more partitions than walks at once, a big one
        started last would be walked while the other connections sit idle."""

        times: list[float] = []
        probe = self._probe(ctx, times)
        # Imbalance below one page per end is not worth another round trip of probes.
        grain = self.cfg.page_size * len(self._directions())
        found = await plan(probe, first=FIRST_DAY, last=today, parts=wanted,
                           fanout=self.cfg.concurrency, grain=grain)  # fmt: skip
        # walk_max_seconds: no partition planned longer than that, at the probes' page time
        # (a lower bound: a page of many items takes longer; running walks are cut as well).
        # The median: one probe that waited out a 429 does not make every page look slow.
        planned = WalkBudget(self.cfg.walk_max_seconds)
        planned.observe_page(statistics.median(times) if times else 0.0)
        need = planned.pieces(found.total, page_size=self.cfg.page_size,
                              ends=len(self._directions()))  # fmt: skip
        if need > wanted and wanted < MAX_PIECES:
            log.info("nobb: %s to keep each walk within walk_max_seconds (%gs)",
                     counted(min(need, MAX_PIECES), "partition"),
                     self.cfg.walk_max_seconds)  # fmt: skip
            parts = min(need, MAX_PIECES)
            fanout = max(self.cfg.concurrency, 2 * parts)
            found = await plan(probe, first=FIRST_DAY, last=today, parts=parts, fanout=fanout,
                               grain=grain)  # fmt: skip
        log.info("nobb: %s from %s in %s: %s", counted(len(found.partitions), "partition"),
                 counted(found.probes, "probe"), counted(found.levels, "level"),
                 found.counts)  # fmt: skip
        ranked = sorted(zip(found.counts, found.partitions, strict=True), key=lambda c: -c[0])
        return [p for _, p in ranked], found.total

    def _probe(self, ctx: RunContext, times: list[float] | None = None) -> Probe:
        """A planning probe: how many items changed in ``[lo, hi]`` (one 1-item page)."""

        async def probe(lo: date | None, hi: date | None) -> int:
            params = {"pageSize": "1"}
            if lo is not None:
                params["from"] = lo.isoformat()
            if hi is not None:
                params["to"] = hi.isoformat()
            t0 = self.clock.monotonic()
            headers = await self._fetcher.fetch(ctx, params, None, None, label="nobb probe")
            if times is not None:
                times.append(self.clock.monotonic() - t0)
            assert headers is not None  # only walks can see page 1 come back
            return int(header(headers, TOTAL) or 0)

        return probe

    async def _cut(
        self, ctx: RunContext, part: Partition, seam: Seam, walk: Walk, add: Callable[[Work], None]
    ) -> bool:
        """Cut ``part`` into pieces whose walks fit the budget (``walk_budget.py``), by change
        date; True if this end is to stop (cut, by this end or the other), False to walk on."""
        pid, ends = part.id, len(self._directions())
        if seam.cut or pid in self._splitting:
            # The other end cuts; if it cannot, it walks on alone (still exact), so it must not
            # count on this end's next page (Walk._other_end_finishes): this end is done.
            walk.done = True
            return True
        if seam.closed or pid in self._uncuttable:
            return False
        total = seam.total or walk.total_hits or 0
        pieces = self._budget.pieces(total, page_size=self.cfg.page_size, ends=ends)
        self._splitting.add(pid)
        try:
            pieces = min(MAX_PIECES, max(2, pieces))
            # Probes two a piece per round trip: a cut needs points inside its own few days.
            found = await split(
                self._probe(ctx), part, first=FIRST_DAY, today=self._today, pieces=pieces,
                fanout=max(self.cfg.concurrency, 2 * pieces), grain=self.cfg.page_size * ends,
            )  # fmt: skip
        finally:
            self._splitting.discard(pid)
        if found is None:
            self._uncuttable.add(pid)
            log.warning("%s: its walk outlives the tokens (%.1fs), but it cannot be cut by "
                        "date (its items changed on one day, or the probes found no cut)",
                        walk.label, self._budget.seconds)  # fmt: skip
            return False
        if _met(seam):
            return False  # the ends met while the pieces were planned: nothing left to cut
        seam.cut = walk.done = True
        ctx.partitions[pid]["split_into"] = [p.id for p in found]
        self._positions.drop(pid)
        at = self._parts.index(part)
        self._parts[at : at + 1] = found
        if ctx.save_plan is not None:  # a resume walks the pieces, not the partition
            await ctx.save_plan([[p.date_from, p.date_to] for p in self._parts])
        ctx.progress.partitions_total += len(found)
        log.info("%s: cut into %s by change date (a walk may run %.1fs, %s)", walk.label,
                 counted(len(found), "partition"), self._budget.seconds,
                 counted(self._budget.pages, "page"))  # fmt: skip
        for piece in found:
            if piece.id in ctx.done:  # finished before a crash: kept
                ctx.partitions[piece.id] = dict(ctx.done[piece.id])
                ctx.progress.partitions_done += 1
                continue
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
            extra={"suppliers": ",".join(self.cfg.suppliers)} if self.cfg.suppliers else None,
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
                        and budget.should_cut(elapsed=self.clock.time() - began, pages=chain_pages)
                        and await self._cut(ctx, part, seam, walk, add)):  # fmt: skip
                    break
                counter = [0]
                sent = self.clock.time()
                headers = await self._fetcher.fetch(ctx, params, walk, counter,
                                                    label=walk.label)  # fmt: skip
                written += counter[0]
                if headers is None:  # page 1 came back: the chain had died when this was sent
                    if chain_pages:
                        budget.observe_expiry(sent - began)
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
                if ctx.checkpoint is not None:
                    await ctx.checkpoint({pid: result})

    async def _maybe_save(self, ctx: RunContext) -> None:
        """Every ``checkpoint_every`` seconds: make the walks' positions durable (positions.py)."""
        now = self.clock.monotonic()
        if ctx.save_positions is None or now - self._last_save < ctx.checkpoint_every:
            return
        self._last_save = now  # first, so the walks that reach here meanwhile do not save too
        await ctx.save_positions(self._positions.snapshot())


def _met(seam: Seam) -> bool:
    """Whether the ends have met by now (read after an await, where it may have changed)."""
    return seam.closed
