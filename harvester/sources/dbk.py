"""The DBK / Bogportalen ONIX 3.1 export source: time windows, streamed ONIX → JSON.

The export has no pagination, so a run covers ``[start, end)`` with ``updatedFrom`` (inclusive)
/ ``updatedTo`` (exclusive) windows from ``windows.py``: a response holding
``max_products_per_response`` products may have been cut off and is bisected; a one-second
window still that full is named in the manifest and makes the run incomplete. A dump runs from
``dbk.start`` to the run's start ``T0``, then a catch-up from ``T0`` to now for products that
changed meanwhile; a sync runs from the last complete run's high-water mark minus
``sync_overlap_days``. The windows a complete run saw are kept in ``state.json`` as the learned
density the next run plans from.

Each response body is cut at product boundaries as it streams in and held (at most
``max_products_per_response`` products) until it is known not to be cut off; its batches are
then converted to JSON lines in worker processes (``parse/``). A cut-off response is never
converted. A window's records are final when the window is; finished windows are checkpointed
in groups (every ``CHECKPOINT_RECORDS`` records or ``CHECKPOINT_SECONDS``), so shards stay large.

Exactly-once, latest version: a product is in one window, its update time's. A product that
changes during a dump moves to the catch-up range; if its older version was already written,
the catch-up's newer one replaces that line in the committed shards (``RunContext.supersede``),
so the dump holds each ``record_reference`` once, in the latest version seen
(``checks.replaced_by_newer_version``; past ``NEWER_MAX`` such products the rest keep their
first version, the manifest says so, and the next sync carries them).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from harvester.clock import Clock, SystemClock
from harvester.config import DbkConfig
from harvester.errors import FetchError, Unauthorized
from harvester.http import HttpClient, HttpSettings, Request, raise_for_status
from harvester.limiter import RateLimiter
from harvester.parse.onix import Converted, Src, product_times
from harvester.parse.onix_pool import OnixConverter
from harvester.parse.onix_split import Batch, OnixSplitter, Prologue
from harvester.retry import RetryPolicy, call_with_retries
from harvester.sources.base import Key, RunContext
from harvester.sources.dbk_auth import DbkSession
from harvester.windows import Window, WindowPlanner, estimate, stamp

__all__ = ["EXPORT", "DbkSource"]

log = logging.getLogger("harvester.dbk")
EXPORT = "/onix/document/export/v3.1"
CHECKPOINT_RECORDS = 50_000
CHECKPOINT_SECONDS = 30.0
NEWER_MAX = 100_000
_KEY_PREFIX = b'{"record_reference":"'
MAX_LEARNED = 4000


class _Full(Exception):
    """The response reached the cap: stop reading it, the window will be bisected."""


class DbkSource:
    """Harvests the ONIX export into a run (see the module docstring)."""

    name = "dbk"

    def __init__(self, cfg: DbkConfig, *, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self._policy = RetryPolicy(attempts=max(1, cfg.retries))

    def key_of(self, line: bytes) -> str:
        # Records start with their key (parse/onix.py writes it first): slice it out, and
        # parse the line only if the key has escapes.
        if line.startswith(_KEY_PREFIX):
            end = line.find(b'"', len(_KEY_PREFIX))
            key = line[len(_KEY_PREFIX) : end]
            if end > 0 and b"\\" not in key:
                return key.decode()
        return str(orjson.loads(line)["record_reference"])

    async def harvest(self, ctx: RunContext) -> None:
        cfg = self.cfg
        rate, period = cfg.rate
        self._limiter = RateLimiter(max_rate=rate, time_period=period, clock=self.clock)
        ctx.progress.limit = cfg.rate_limit
        settings = HttpSettings(
            concurrency=cfg.concurrency + 1,  # one connection for token renewal
            connect_timeout=cfg.connect_timeout,
            first_byte_timeout=cfg.first_byte_timeout,
            read_timeout=cfg.read_timeout,
            max_body_bytes=cfg.max_body_mb << 20,
            accept_encoding=cfg.accept_encoding,
        )
        t0 = int(ctx.started.timestamp())
        if ctx.plan:
            start, end = (int(datetime.fromisoformat(str(v)).timestamp()) for v in ctx.plan[0])
        else:
            start = self._start(ctx)
            end = t0
            if ctx.save_plan is not None:
                ctx.save_plan([[_iso(start), _iso(end)]])
        learned = [(int(a), int(b), int(n)) for a, b, n in _list(ctx.source_state.get("windows"))]
        done = []
        for pid, result in ctx.done.items():
            ctx.partitions[pid] = dict(result)
            done.append((int(str(result["start"])), int(str(result["end"]))))
        # The learned density gives the expected count, hence an ETA (windows: done/?).
        ctx.progress.expected = round(estimate(learned, start, end)) or None
        self._since_checkpoint: list[tuple[str, dict[str, object]]] = []
        self._pending_records = 0
        self._last_checkpoint = self.clock.monotonic()
        self._changed = 0
        self._newer: dict[Key, bytes] | None = None  # catch-up: newer versions of written keys
        self._late: set[str] = set()  # keys first written by the catch-up
        self._newer_dropped = 0
        self._replaced = 0
        async with (
            HttpClient(settings, base_url=cfg.base_url) as http,
            OnixConverter(cfg.workers) as conv,
        ):
            self._http, self._conv = http, conv
            self._session = DbkSession(cfg, http, self.clock, policy=self._policy)
            await self._session.bearer()  # bad credentials stop the source before any window
            main = WindowPlanner(
                start, end, cap=cfg.max_products_per_response, lanes=cfg.concurrency,
                learned=learned, done=done,
            )  # fmt: skip
            await self._run(ctx, main, catch_up=False)
            await self._flush_checkpoints(ctx)
            covered = list(main.covered)
            if ctx.mode == "dump" and not main.failed and not main.unsplittable:
                now = int(self.clock.time()) + 1
                late = WindowPlanner(
                    end, max(end, now), cap=cfg.max_products_per_response, lanes=cfg.concurrency,
                    learned=learned,
                )  # fmt: skip
                self._newer, self._late = {}, set()
                await self._run(ctx, late, catch_up=True)
                covered += late.covered
                if self._newer and ctx.supersede is not None:
                    self._replaced = await ctx.supersede(self._newer)
                self._newer = None
        ctx.checks.update({
            "windows": main.requests, "unsplittable": [w.id for w in main.unsplittable],
            "written": ctx.progress.records, "changed_during_run": self._changed,
            "replaced_by_newer_version": self._replaced,
            "authentications": self._session.authentications,
            "token_refreshes": self._session.refreshes,
        })  # fmt: skip
        if self._newer_dropped:
            ctx.checks["note"] = (
                f"{self._newer_dropped} products changed during the run beyond the first "
                f"{NEWER_MAX:,}: they keep the version first seen; the next sync carries them"
            )
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
        """Fetch windows until the planner is finished, ``concurrency`` at once."""
        changed = asyncio.Event()

        async def worker() -> None:
            while True:
                w = planner.take()
                if w is None:
                    if planner.finished:
                        changed.set()
                        return
                    changed.clear()
                    await changed.wait()
                    continue
                try:
                    await self._one(ctx, planner, w, catch_up=catch_up)
                finally:
                    changed.set()

        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(self.cfg.concurrency):
                    tg.create_task(worker())
        except BaseExceptionGroup as group:
            # One window's fatal error (AuthError, a disk error) stops the source: report it
            # as itself, not wrapped in a group.
            raise group.exceptions[0] from None

    async def _one(
        self, ctx: RunContext, planner: WindowPlanner, w: Window, *, catch_up: bool
    ) -> None:
        full = w.width > 1  # a full one-second window is read whole: it cannot be split
        try:
            count, written, seen = await self._fetch(ctx, w, stop_when_full=full)
        except FetchError as exc:
            log.error("dbk window %s failed: %s", w.id, exc)
            planner.fail(w, str(exc))
            ctx.partitions[w.id] = {"ok": False, "start": w.start, "end": w.end, "error": str(exc)}
            ctx.progress.partitions_failed += 1
            return
        if count >= planner.cap:
            if not planner.truncated(w, seen):
                why = (
                    f"{count} or more products share one second (the response cap is "
                    f"{planner.cap}): this window cannot be split, some may be missing"
                )
                log.error("dbk window %s: %s", w.id, why)
                ctx.partitions[w.id] = {"ok": False, "start": w.start, "end": w.end, "error": why}
            return
        planner.complete(w, count)
        ctx.progress.partitions_done += 1
        result: dict[str, object] = {"ok": True, "start": w.start, "end": w.end,
                                     "count": count, "written": written}  # fmt: skip
        if catch_up:
            result["catch_up"] = True
            self._changed += count - written
        ctx.partitions[w.id] = result
        self._since_checkpoint.append((w.id, result))
        self._pending_records += written
        if (
            self._pending_records >= CHECKPOINT_RECORDS
            or self.clock.monotonic() - self._last_checkpoint >= CHECKPOINT_SECONDS
        ):
            await self._flush_checkpoints(ctx)

    async def _flush_checkpoints(self, ctx: RunContext) -> None:
        done, self._since_checkpoint = self._since_checkpoint, []
        self._pending_records = 0
        self._last_checkpoint = self.clock.monotonic()
        if ctx.checkpoint is not None:
            for pid, result in done:
                await ctx.checkpoint(pid, result)

    def _request(self, w: Window, token: str) -> Request:
        cfg = self.cfg
        filters: dict[str, Any] = {"updatedFrom": stamp(w.start), "updatedTo": stamp(w.end)}
        if cfg.publisher:
            filters["publisher"] = cfg.publisher
        if cfg.product_ids:
            filters["productIds"] = list(cfg.product_ids)
        auth = (("Authorization", f"Bearer {token}"),)
        label = f"dbk window {w.id}"
        if cfg.filters_in == "body":
            return Request(method="POST", url=EXPORT, json=filters, headers=auth, label=label)
        params = tuple(
            (k, ",".join(v) if isinstance(v, list) else str(v)) for k, v in filters.items()
        )
        return Request(method="GET", url=EXPORT, params=params, headers=auth, label=label)

    async def _fetch(
        self, ctx: RunContext, w: Window, *, stop_when_full: bool
    ) -> tuple[int, int, list[int]]:
        """One window: (products in the response, records newly written, their update times)."""
        cap = self.cfg.max_products_per_response
        written = [0]
        converted = [0]
        seen: list[int] = []

        async def attempt() -> int:
            seen.clear()
            converted[0] = 0
            token = await self._session.bearer()
            request = self._request(w, token)
            ctx.progress.requests += 1
            splitter = OnixSplitter(label=request.label)
            try:
                async with self._limiter.slot(), self._http.stream(request) as resp:
                    self._limiter.observe(resp.headers)
                    if resp.status == 401:
                        await self._session.after_401(token)
                    if resp.status >= 400:
                        if resp.status == 429:
                            ctx.progress.throttled += 1
                        raise_for_status(resp, request, await resp.read(2048))
                    self._session.confirm(token)
                    if resp.status == 204:
                        return 0
                    limit = cap if stop_when_full else None
                    await self._stream(ctx, resp.chunks(), splitter, request.label, written,
                                       converted, seen, limit)  # fmt: skip
            except _Full:
                return splitter.products
            # The workers' count guards the splitter's (a product end it did not see as one).
            return max(splitter.products, converted[0])

        def on_retry(n: int, exc: FetchError, delay: float) -> None:
            ctx.progress.retries += 1
            log.warning("dbk window %s: retry %d in %.1fs after %s", w.id, n, delay, exc)

        while True:
            try:
                count = await call_with_retries(
                    attempt, policy=self._policy, clock=self.clock, limiter=self._limiter,
                    on_retry=on_retry,
                )  # fmt: skip
                return count, written[0], seen
            except Unauthorized:
                continue  # the session authenticated again (after_401); a second refusal raised

    async def _stream(
        self,
        ctx: RunContext,
        chunks: Any,
        splitter: OnixSplitter,
        label: str,
        written: list[int],
        converted: list[int],
        seen: list[int],
        cap: int | None,
    ) -> None:
        """Read one body: hold its batches until it is known not to be cut off, then convert.

        A response that reaches ``cap`` products is dropped unconverted (its window is split;
        ``seen`` gets the products' datestamps to split at), so a cut-off response costs
        bandwidth but no conversion. Holding is bounded by ``cap`` products; past that (a
        one-second window, read whole) batches are converted as they arrive.
        """
        pending: deque[asyncio.Future[list[Converted]]] = deque()
        held: list[Batch] = []
        streaming = False
        prologue: Prologue | None = None
        src: Src = {}
        limit = max(2, 2 * self.cfg.workers)

        async def drain(keep: int) -> None:
            while len(pending) > keep:
                records = await self._conv.result(pending.popleft(), label=label)
                converted[0] += len(records)
                for key, line, _ in records:
                    if await ctx.sink.write(key, line):
                        ctx.progress.records += 1
                        written[0] += 1
                        if self._newer is not None:
                            self._late.add(key)
                    elif self._newer is not None and key not in self._late:
                        # Written before it changed: keep this newer version to replace it.
                        if len(self._newer) < NEWER_MAX or key in self._newer:
                            self._newer[key] = line
                        else:
                            self._newer_dropped += 1

        try:
            async for chunk in chunks:
                ctx.progress.bytes_in += len(chunk)
                for piece in splitter.feed(chunk):
                    if isinstance(piece, Prologue):
                        prologue, src = piece, self._conv.header(piece, label=label)
                    elif streaming:
                        assert prologue is not None
                        pending.append(self._conv.submit(prologue, src, piece))
                        await drain(limit)
                    else:
                        held.append(piece)
                if not streaming and cap is not None and splitter.products >= cap:
                    seen.extend(t for b in held for t in product_times(b.data))
                    raise _Full
                if not streaming and splitter.products >= self.cfg.max_products_per_response:
                    streaming = True
                    assert prologue is not None
                    pending.extend(self._conv.submit(prologue, src, b) for b in held)
                    held.clear()
                    await drain(limit)
            for piece in splitter.close():
                prologue, src = piece, self._conv.header(piece, label=label)
            if held:
                assert prologue is not None
                pending.extend(self._conv.submit(prologue, src, b) for b in held)
            await drain(0)
        finally:
            for fut in pending:
                fut.cancel()


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
    keep = [w for w in learned if w[1] <= start or w[0] >= end] + list(covered)
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
