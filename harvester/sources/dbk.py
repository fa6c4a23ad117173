"""The DBK / Bogportalen ONIX 3.1 export source: time windows, streamed ONIX → JSON.

The export has no pagination, so a run covers ``[start, end)`` with windows from ``windows.py``,
each asked as ``updatedFrom`` / ``updatedTo`` by the edge rule (``edges.py``: one second early
until the reading is proven, so every reading is exact): a response holding
``max_products_per_response`` products may have been cut off and is split, and so is one the
server refuses as too many (413, or a 400 saying so; the cap its message states is planned for
from then on); a one-second window still that full, or still refused, is named in the manifest
and makes the run incomplete. A dump runs from
``dbk.start`` to the run's start ``T0`` (whole seconds), then a catch-up from ``T0`` to now for
products that changed in ``T0``'s second or later; a sync runs from the last complete run's
high-water mark (its ``T0``) minus ``sync_overlap_days``, and catches up the same way. The
windows a complete run saw are kept in ``state.json`` as the learned density the next run plans
from.

One window's request, retries and body → records are ``dbk_fetch.py``'s. A window's records
are final when the window is; finished windows are checkpointed in groups (every
``CHECKPOINT_RECORDS`` records, or ``output.checkpoint_seconds``), so shards stay large.

Exactly-once, latest version: a product is in one window, its update time's. A product that
changes during a dump moves to the catch-up range; if its older version was already written,
the catch-up's newer one replaces that line in the committed shards (``RunContext.supersede``),
so the dump holds each ``record_reference`` once, in the latest version seen
(``checks.replaced_by_newer_version``, ``latest.py``; past ``NEWER_MAX`` the rest keep their
first version, the manifest says so, and the next sync carries them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

import orjson

from harvester.config import DbkConfig
from harvester.engine.clock import Clock, SystemClock
from harvester.engine.http import HttpClient
from harvester.engine.limiter import RateLimiter
from harvester.engine.retry import RetryPolicy
from harvester.engine.scheduler import run_pool
from harvester.errors import FetchError
from harvester.parse.onix_pool import OnixConverter
from harvester.plan.edges import SecondEdges
from harvester.plan.windows import Window, WindowPlanner, estimate
from harvester.sources.base import Key, RunContext
from harvester.sources.dbk_auth import DbkSession
from harvester.sources.dbk_fetch import EXPORT, Fetched, WindowFetcher
from harvester.sources.endpoint import check_certificate, http_settings
from harvester.store.latest import LatestVersions

__all__ = ["EXPORT", "DbkSource"]

log = logging.getLogger("harvester.dbk")
CHECKPOINT_RECORDS = 50_000
_KEY_PREFIX = b'{"record_reference":"'
MAX_LEARNED = 4000


class DbkSource:
    """Harvests the ONIX export into a run (see the module docstring)."""

    name = "dbk"

    def __init__(
        self,
        cfg: DbkConfig,
        *,
        clock: Clock | None = None,
        assume_edges: tuple[bool, bool] | None = None,
    ) -> None:
        """``assume_edges`` (``updatedFrom`` inclusive, ``updatedTo`` inclusive) takes a reading
        as known instead of measuring it: only a benchmark's baseline does (edges.py)."""
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self._policy = RetryPolicy(attempts=max(1, cfg.retries))
        self._assume = assume_edges
        self._stated_cap: int | None = None  # the cap a refusal stated, for every planner after
        self._known: int | None = None  # a second some answer showed a product in (_exactly)

    def key_of(self, line: bytes) -> str:
        # Records start with their key (parse/onix.py writes it first): slice it out, and
        # parse the line only if the key has escapes.
        if line.startswith(_KEY_PREFIX):
            end = line.find(b'"', len(_KEY_PREFIX))
            key = line[len(_KEY_PREFIX) : end]
            if end > 0 and b"\\" not in key:
                return key.decode()
        return str(orjson.loads(line)["record_reference"])

    def state_from(self, manifest: Mapping[str, object]) -> dict[str, object]:
        """The high-water mark is the run's start (as ``harvest`` leaves it); the learned window
        sizes are the run's own windows (older ones outside its range are learned again)."""
        started = int(datetime.fromisoformat(str(manifest["started"])).timestamp())
        parts = manifest.get("partitions")
        covered = [
            (int(str(r["start"])), int(str(r["end"])), int(str(r["count"])))
            for r in (parts.values() if isinstance(parts, dict) else ())
            if isinstance(r, dict) and r.get("ok") and "count" in r
        ]
        return {"high_water": _iso(started), "windows": _merge([], sorted(covered), 0, 0)}

    async def check(self) -> None:
        await check_certificate(self.cfg, self.name)

    async def harvest(self, ctx: RunContext) -> None:
        cfg = self.cfg
        self._limiter = RateLimiter.from_setting(
            cfg.rate_limit, clock=self.clock, name="dbk", key="dbk.rate_limit"
        )
        ctx.rate_report = self._limiter.report
        ctx.progress.rate = self._limiter.report
        settings = http_settings(cfg, self.name, spare_connections=1)  # one for token renewal
        t0 = int(ctx.started.timestamp())
        if ctx.plan:
            start, end = (int(datetime.fromisoformat(str(v)).timestamp()) for v in ctx.plan[0])
        else:
            start = self._start(ctx)
            end = t0
            await ctx.run.save_plan([[_iso(start), _iso(end)]])
        learned = [(int(a), int(b), int(n)) for a, b, n in _list(ctx.source_state.get("windows"))]
        done = []
        for pid, result in ctx.done.items():
            ctx.partitions[pid] = dict(result)
            done.append((int(str(result["start"])), int(str(result["end"]))))
        # The learned density gives the expected count.
        ctx.progress.expected = round(estimate(learned, start, end)) or None
        # The share done is the time finished windows cover, of [start, end) (then of now).
        ctx.progress.span_total = end - start
        ctx.progress.span_done = sum(max(0, min(b, end) - max(a, start)) for a, b in done)
        self._since_checkpoint: list[tuple[str, dict[str, object]]] = []
        self._pending_records = 0
        self._last_checkpoint = self.clock.monotonic()
        self._changed = 0
        self._latest: LatestVersions | None = None  # during the catch-up only
        self._replaced = 0
        self._overlap_repeats = 0
        self._refusals = 0
        self._edges = (
            SecondEdges() if self._assume is None
            else SecondEdges(self._assume[0], self._assume[1], fixed=True)
        )  # fmt: skip
        async with (
            HttpClient(settings, base_url=cfg.base_url, report=ctx.transport) as http,
            OnixConverter(cfg.workers) as conv,
        ):
            self._session = DbkSession(cfg, http, self.clock, policy=self._policy)
            self._fetcher = WindowFetcher(
                cfg=cfg, http=http, limiter=self._limiter, session=self._session, conv=conv,
                clock=self.clock, policy=self._policy, on_record=self._on_record, floor=start,
            )  # fmt: skip
            await self._session.bearer()  # bad credentials stop the source before any window
            main = WindowPlanner(
                start, end, cap=cfg.max_products_per_response, lanes=cfg.concurrency,
                learned=learned, done=done,
            )  # fmt: skip
            await self._run(ctx, main, catch_up=False)
            await self._flush_checkpoints(ctx)
            covered = list(main.covered)
            # Dump and sync alike catch up from the run's start second to now: what changed
            # in the very second the run started, and while it ran.
            if not main.failed and not main.unsplittable:
                now = int(self.clock.time()) + 1
                ctx.progress.span_total = max(end, now) - start
                late = WindowPlanner(
                    end, max(end, now), cap=cfg.max_products_per_response, lanes=cfg.concurrency,
                    learned=learned,
                )  # fmt: skip
                if self._stated_cap is not None:
                    late.limit(self._stated_cap)
                latest = self._latest = LatestVersions()
                await self._run(ctx, late, catch_up=True)
                covered += late.covered
                self._latest = None
                if latest.newer:
                    self._replaced = await ctx.run.supersede(latest.newer)
                if note := latest.note():
                    ctx.checks["note"] = note
        ctx.checks.update({
            "windows": main.requests, "unsplittable": [w.id for w in main.unsplittable],
            "written": ctx.records_before + ctx.progress.records,
            "changed_during_run": self._changed,
            "replaced_by_newer_version": self._replaced,
            "overlap_repeats": self._overlap_repeats,
            "refused_as_too_many": self._refusals,
            "edges": self._edges.describe(),
            "authentications": self._session.authentications,
            "token_refreshes": self._session.refreshes,
        })  # fmt: skip
        ctx.next_state["high_water"] = _iso(end)
        ctx.next_state["windows"] = _merge(learned, covered, start, end)

    def _start(self, ctx: RunContext) -> int:
        if ctx.mode == "sync":
            last = ctx.source_state.get("high_water")
            if last:
                since = datetime.fromisoformat(str(last)) - timedelta(
                    days=self.cfg.sync_overlap_days
                )
                return int(since.timestamp())
        return int(self.cfg.start.timestamp())

    async def _run(self, ctx: RunContext, planner: WindowPlanner, *, catch_up: bool) -> None:
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
            await self._harvest_window(ctx, planner, w, catch_up=catch_up)
            for nxt in ready():
                add(nxt)

        try:
            await run_pool(ready(), fetch, concurrency=lanes)
        except BaseExceptionGroup as group:
            # One window's fatal error (AuthError, a disk error) stops the source: report it
            # as itself, not wrapped in a group.
            raise group.exceptions[0] from None

    async def _harvest_window(
        self, ctx: RunContext, planner: WindowPlanner, w: Window, *, catch_up: bool
    ) -> None:
        """Fetch window ``w`` (again, exactly, if the edges learned say it was asked wide), then
        mark it complete, failed or cut off in ``planner`` and checkpoint when due."""
        full = w.width > 1  # a full one-second window is read whole: it cannot be split
        try:
            while True:
                bounds = self._edges.bounds(w.start, w.end)
                fetched = await self._fetcher.fetch(ctx, w, stop_when_full=full, bounds=bounds)
                self._edges.observe(bounds, fetched.at_edges, seconds=fetched.seconds)
                self._known = fetched.inside if fetched.inside is not None else self._known
                again = fetched.count >= planner.cap or fetched.refused is not None
                if not again or self._edges.bounds(w.start, w.end) == bounds:
                    break
                # Full, and asked with an overlap second the reading now known (from this
                # response or another) leaves out: ask again exactly before splitting, so a
                # dense neighbour never makes a window look full. At most twice (two ends).
                log.info("dbk edges now %s; window %s again", self._edges.describe(), w.id)
            if fetched.refused is not None and w.width == 1 and bounds != (w.start, w.end):
                fetched = await self._exactly(ctx, w, fetched)
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
                self._stated_cap = min(self._stated_cap or fetched.stated_cap, fetched.stated_cap)
            self._refusals += 1
        if fetched.refused is not None or fetched.count >= planner.cap:
            if not planner.truncated(w, fetched.seen):
                why = (
                    f"{fetched.count} or more products share one second (the response cap is "
                    f"{planner.cap}): this window cannot be split, some may be missing"
                    if fetched.refused is None
                    else f"the server refuses this one-second window as too many products "
                    f"({fetched.refused}): it cannot be split, its products are missing"
                )
                log.error("dbk window %s: %s", w.id, why)
                ctx.partitions[w.id] = {"ok": False, "start": w.start, "end": w.end, "error": why}
            return
        planner.complete(w, fetched.count - fetched.outside)
        ctx.progress.partitions_done += 1
        ctx.progress.span_done += w.width
        result: dict[str, object] = {"ok": True, "start": w.start, "end": w.end,
                                     "count": fetched.count - fetched.outside,
                                     "written": fetched.written}  # fmt: skip
        self._overlap_repeats += fetched.outside
        if catch_up:
            result["catch_up"] = True
            self._changed += max(0, fetched.count - fetched.outside - fetched.written)
        ctx.partitions[w.id] = result
        self._since_checkpoint.append((w.id, result))
        self._pending_records += fetched.written
        if (
            self._pending_records >= CHECKPOINT_RECORDS
            or self.clock.monotonic() - self._last_checkpoint >= ctx.checkpoint_every
        ):
            await self._flush_checkpoints(ctx)

    async def _exactly(self, ctx: RunContext, w: Window, refused: Fetched) -> Fetched:
        """A one-second window refused with its overlap second (an unproven reading sends
        ``updatedFrom`` a second early): that neighbour may be the crowded one. Ask for the
        second alone; if a product stamped with it comes back, ``updatedFrom`` is proven
        inclusive and the answer is exact. Otherwise the refusal stands (an empty answer may
        be an exclusive reading leaving the second out)."""
        exact = (w.start, w.end)
        fetched = await self._fetcher.fetch(ctx, w, stop_when_full=False, bounds=exact)
        self._edges.observe(exact, fetched.at_edges, seconds=fetched.seconds)
        if fetched.refused is None and not self._edges.from_inclusive and self._known is not None:
            # Empty: prove the reading on a second known to hold a product, asked alone.
            t = self._known
            probe = Window(t, t + 1)
            seen = await self._fetcher.fetch(ctx, probe, stop_when_full=False, bounds=(t, t + 1))
            self._edges.observe((t, t + 1), seen.at_edges, seconds=seen.seconds)
        if fetched.refused is None and self._edges.from_inclusive:
            return fetched
        return refused

    def _on_record(self, key: Key, line: bytes, new: bool) -> None:
        """Catch-up only: remember newer versions of records written before they changed."""
        if self._latest is None:
            return
        if new:
            self._latest.written(key)
        else:
            self._latest.met_again(key, line)

    async def _flush_checkpoints(self, ctx: RunContext) -> None:
        done, self._since_checkpoint = self._since_checkpoint, []
        self._pending_records = 0
        self._last_checkpoint = self.clock.monotonic()
        if done:
            await ctx.run.checkpoint(dict(done))  # one commit for the group: one shard, not many


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _list(value: object) -> list[list[int]]:
    return (
        [v for v in value if isinstance(v, list) and len(v) == 3] if isinstance(value, list) else []
    )


def _merge(
    learned: list[tuple[int, int, int]], covered: list[tuple[int, int, int]], start: int, end: int
) -> list[list[int]]:
    """The density for the next run: this run's windows, and the old ones outside its range."""
    keep = list(covered)
    for a, b, n in learned:  # the old windows outside this run's range, clipped to it
        for lo, hi in ((a, min(b, start)), (max(a, end), b)):
            if hi > lo:
                keep.append((lo, hi, round(n * (hi - lo) / (b - a))))
    keep.sort()
    while len(keep) > MAX_LEARNED:  # coarsen: merge touching neighbours pairwise
        merged: list[tuple[int, int, int]] = []
        for i in range(0, len(keep), 2):
            pair = keep[i : i + 2]
            if len(pair) == 2 and pair[1][0] == pair[0][1]:
                merged.append((pair[0][0], pair[1][1], pair[0][2] + pair[1][2]))
            else:
                merged += pair
        if len(merged) == len(keep):
            break
        keep = merged
    return [list(w) for w in keep]
