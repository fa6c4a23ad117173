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
(``positions.py``). One run's state is a ``NobbRun`` (``nobb_run.py``); the source object holds
only its configuration.

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
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

import orjson

from harvester.config import NobbConfig
from harvester.engine.clock import Clock, SystemClock
from harvester.engine.limiter import RateLimiter
from harvester.engine.retry import RetryPolicy
from harvester.plan.edges import DayEdges
from harvester.plan.walk import Partition, Seam
from harvester.sources.base import RunContext
from harvester.sources.endpoint import (
    Connect,
    Endpoint,
    check_certificate,
    connector,
    http_settings,
)
from harvester.sources.nobb_fetch import PageFetcher
from harvester.sources.nobb_run import NobbRun

__all__ = ["NobbSource"]

log = logging.getLogger("harvester.nobb")
#: How many bytes of a page are read from the socket at a time. 256 KB saved about 7 % of a
#: 100,000-item dump's CPU, but a chain then takes its whole page in one read and sends its next
#: request before the other end has read its answer; on the clocks that count requests served
#: (tests/clocks.PagedClock) that made the two ends' page times, and so their cuts, uneven.
PAGE_READ = 1 << 16
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
        connect: Connect | None = None,
    ) -> None:
        """``assume_edges`` (``from`` inclusive, ``to`` inclusive) takes a reading as known
        instead of measuring it: only a benchmark's baseline does (edges.py).
        ``connect`` opens the run's client (default: ``HttpClient`` on ``cfg.base_url``)."""
        self._assume = assume_edges
        self.cfg = cfg
        self._connect = connect or connector(cfg.base_url)
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
        # The last run's limiter stays readable on the source (what it learned, after the run).
        limiter = self._limiter = RateLimiter.from_setting(
            cfg.rate_limit, clock=self.clock, name="nobb", key="nobb.rate_limit"
        )
        ctx.rate_report = limiter.report
        ctx.progress.rate = limiter.report
        assume = self._assume
        edges = DayEdges() if assume is None else DayEdges(assume[0], assume[1], fixed=True)
        # The run's one reading of the date (UTC): a run started at 23:59:59.9 plans up to,
        # catches up from and records as its high-water mark the same day.
        today = ctx.started.date()
        settings = replace(http_settings(cfg, self.name), chunk_size=PAGE_READ)
        async with self._connect(settings, ctx.transport) as http:
            endpoint = Endpoint(
                source=self.name,
                http=http,
                limiter=limiter,
                clock=self.clock,
                policy=self._policy,
                log=log,
            )
            fetcher = PageFetcher(
                endpoint=endpoint,
                auth=self._auth,
                edges=edges,
                start_day=tuple(d.isoformat() for d in {today, edges.since(today)}),
            )
            run = NobbRun(
                cfg=cfg, ctx=ctx, clock=self.clock, fetcher=fetcher, edges=edges, today=today
            )
            if not await run.harvest():  # no plan, no walks: incomplete, --resume re-plans
                return
        run.account()
        ctx.next_state["high_water"] = today.isoformat()
