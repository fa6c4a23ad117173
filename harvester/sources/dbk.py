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

One window's request, retries and body → records are ``dbk_fetch.py``'s; one run's windows and
state are a ``DbkRun`` (``dbk_run.py``): the source object holds only its configuration. A
window's records are final when the window is; finished windows are checkpointed in groups (every
``CHECKPOINT_RECORDS`` records, or ``output.checkpoint_seconds``), so shards stay large.

Exactly-once, latest version: a product is in one window, its update time's. A product that
changes during a dump moves to the catch-up range; if its older version was already written,
the catch-up's newer one replaces that line in the committed shards (``RunState.supersede``),
so the dump holds each ``record_reference`` once, in the latest version seen
(``checks.replaced_by_newer_version``, ``latest.py``; past ``NEWER_MAX`` the rest keep their
first version, the manifest says so, and the next sync carries them).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import orjson

from harvester.config import DbkConfig
from harvester.engine.clock import Clock, SystemClock
from harvester.engine.limiter import RateLimiter
from harvester.engine.retry import RetryPolicy
from harvester.parse.onix_pool import OnixConverter
from harvester.plan.edges import SecondEdges
from harvester.plan.windows import estimate
from harvester.sources.base import RunContext
from harvester.sources.dbk_auth import DbkSession
from harvester.sources.dbk_fetch import EXPORT
from harvester.sources.dbk_run import DbkRun
from harvester.sources.endpoint import (
    Connect,
    Endpoint,
    check_certificate,
    connector,
    http_settings,
)

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
        connect: Connect | None = None,
    ) -> None:
        """``assume_edges`` (``updatedFrom`` inclusive, ``updatedTo`` inclusive) takes a reading
        as known instead of measuring it: only a benchmark's baseline does (edges.py).
        ``connect`` opens the run's client (default: ``HttpClient`` on ``cfg.base_url``)."""
        self.cfg = cfg
        self._connect = connect or connector(cfg.base_url)
        self.clock = clock or SystemClock()
        self._policy = RetryPolicy(attempts=max(1, cfg.retries))
        self._assume = assume_edges

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
        limiter = RateLimiter.from_setting(
            cfg.rate_limit, clock=self.clock, name="dbk", key="dbk.rate_limit"
        )
        ctx.rate_report = limiter.report
        ctx.progress.rate = limiter.report
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
        edges = (
            SecondEdges()
            if self._assume is None
            else SecondEdges(self._assume[0], self._assume[1], fixed=True)
        )
        async with (
            self._connect(settings, ctx.transport) as http,
            OnixConverter(cfg.workers) as conv,
        ):
            session = DbkSession(cfg, http, self.clock, policy=self._policy)
            endpoint = Endpoint(
                source=self.name,
                http=http,
                limiter=limiter,
                clock=self.clock,
                policy=self._policy,
                log=log,
            )
            run = DbkRun(
                cfg=cfg,
                ctx=ctx,
                clock=self.clock,
                endpoint=endpoint,
                session=session,
                conv=conv,
                edges=edges,
                start=start,
                end=end,
                checkpoint_records=CHECKPOINT_RECORDS,
            )
            covered = await run.harvest(learned, done)
        ctx.checks.update(run.checks())
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
