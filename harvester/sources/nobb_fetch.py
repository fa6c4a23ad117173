"""One NOBB page: its request under the limiter, retries, and items streamed into the sink.

``PageFetcher.fetch`` sends one ``GET /api/v2/items`` through ``Endpoint.send`` and, for a walk,
streams the page's items (``parse/nobb.py``) through the walk's claims into the sink; it returns the
response headers, or None when page 1 came back instead, or a 400 answered a page token (an expired
token: the walk restarts). A 202 Accepted is waited out (``Retry-After``, else backoff) and the page
asked again, costing no retry attempt (at most ``max_429_waits`` times). A page retried after a
failure part-way re-reads what the sink already has, and its key set drops the repeats. During the
catch-up (``latest`` set) an item the sink already had is offered as a newer version
(``latest.py``); before it, items changed on the run's start day are fingerprinted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from harvester.engine.messages import Request
from harvester.engine.retry import backoff
from harvester.engine.statuses import retry_after
from harvester.errors import AuthError, FetchError, Unauthorized
from harvester.parse.nobb import Items, ItemSplitter
from harvester.plan.edges import DayEdges
from harvester.plan.walk import Claim, Walk
from harvester.sources.base import RunContext
from harvester.sources.endpoint import Answer, Endpoint
from harvester.store.latest import LatestVersions

__all__ = ["PATH", "PageFetcher"]

log = logging.getLogger("harvester.nobb")
PATH = "/api/v2/items"


@dataclass(frozen=True, slots=True)
class _Accepted:
    """A 202 Accepted answer: ask again after ``after`` seconds (``Retry-After``), or backoff."""

    after: float | None


@dataclass(slots=True, kw_only=True)
class PageFetcher:
    """Fetches pages for one run (module docstring)."""

    endpoint: Endpoint
    auth: tuple[tuple[str, str], ...]
    #: The days the catch-up walks again (the run's start day, and the day before while
    #: ``from`` may be exclusive): items changed on them are fingerprinted when written.
    start_day: tuple[str, ...]
    fingerprints: LatestVersions = field(default_factory=LatestVersions)
    latest: LatestVersions | None = None
    edges: DayEdges | None = None  #: learns the reading of from/to from the items' dates
    #: A sync's first day: an item changed before it came only with the day asked early.
    floor: str | None = None

    async def fetch(
        self,
        ctx: RunContext,
        params: dict[str, str],
        walk: Walk | None,
        counter: list[int] | None,
        *,
        label: str,
    ) -> dict[str, str] | None:
        """Fetch one page, feeding its items to ``walk``; None means page 1 came back (restart)."""
        request = self._request(params, label)
        first = True

        async def prepare() -> Request:
            nonlocal first
            if walk is not None and not first:
                walk.retry_page()
            first = False
            return request

        async def page(answer: Answer) -> dict[str, str] | _Accepted | None:
            nonlocal first
            resp = answer.response
            if resp.status == 202:
                first = True  # nothing of the page was read: asking again is no retry
                return _Accepted(
                    retry_after(
                        resp.headers.get("Retry-After"),
                        self.endpoint.clock.time(),
                        resp.headers.get("Date"),
                    )
                )
            if resp.status == 400 and walk is not None and "pageToken" in params:
                # A server may answer an expired token as it answers a garbage one: the chain
                # is dead, as when page 1 comes back (the walk restarts, bounded, or is cut).
                log.warning(
                    "%s: HTTP 400 for its page token: taken as an expired chain", request.label
                )
                return None
            await self.endpoint.refuse(answer, ctx.progress)
            headers = dict(resp.headers)
            if walk is None:
                return headers
            restart = await self._read_items(ctx, answer, walk, counter, request.label)
            return None if restart else headers

        accepted = 0
        while True:
            answer = await self.endpoint.send(
                prepare,
                page,
                progress=ctx.progress,
                what=label,
                partition=walk.partition.id if walk else None,
                unauthorized=_refused,
            )
            if not isinstance(answer, _Accepted):
                return answer
            accepted += 1
            await self._wait_accepted(ctx, accepted, answer, request.label, label)

    def _request(self, params: dict[str, str], label: str) -> Request:
        """The GET of one page with ``params``, labelled with its from..to."""
        return Request(
            method="GET",
            url=PATH,
            params=tuple(params.items()),
            headers=self.auth,
            label=f"{label} GET {PATH} {params.get('from', '')}..{params.get('to', '')}",
        )

    async def _read_items(
        self, ctx: RunContext, answer: Answer, walk: Walk, counter: list[int] | None, label: str
    ) -> bool:
        """Feed the page's items to ``walk`` and write them; True when the walk must restart."""
        splitter = ItemSplitter(label=label)
        async for chunk in answer.response.chunks():
            ctx.progress.bytes_in += len(chunk)
            stop = await self._claim_and_write(ctx, walk, splitter.feed(chunk), counter)
            if stop is not None:
                return stop is Claim.RESTART
        stop = await self._claim_and_write(ctx, walk, splitter.close(), counter)
        return stop is Claim.RESTART

    async def _wait_accepted(
        self, ctx: RunContext, accepted: int, answer: _Accepted, request: str, label: str
    ) -> None:
        """The ``accepted``-th 202 Accepted in a row for one page: wait before asking again.

        The page is being prepared: not an error, not an empty page nor the end of a chain,
        and no attempt spent. Wait ``Retry-After`` (cut to ``max_delay``: asking early costs
        one 202), else a backoff; past ``max_429_waits`` in a row, ``FetchError``.
        """
        ctx.progress.accepted += 1
        policy = self.endpoint.policy
        if accepted > policy.max_429_waits:
            raise FetchError(f"HTTP 202 Accepted {accepted} times in a row", request=request)
        delay = backoff(accepted, policy) if answer.after is None else answer.after
        delay = min(delay, policy.max_delay)
        log.info("%s: 202 Accepted, asking again in %.1fs", label, delay)
        await self.endpoint.clock.sleep(delay)

    async def _claim_and_write(
        self, ctx: RunContext, walk: Walk, items: Items, counter: list[int] | None
    ) -> Claim | None:
        """A chunk's items, in order: claim them for ``walk`` and write those ours and new.

        Returns RESTART or MET when an item ended the page there (the items after it are not
        claimed), else None. During the catch-up (``self.latest`` set) an item the sink already
        had is offered as a newer version (``latest.py``); before it, items changed on the start
        day are fingerprinted so the catch-up can tell them unchanged.
        """
        keys, modified = items.keys, items.modified
        if not keys:
            return None
        if self.edges is not None:
            part = walk.partition
            self.edges.observe_all(part.date_from, part.date_to, modified)
        claims = walk.on_items(keys)
        mine = None
        if claims.count(Claim.CLAIMED) < len(keys):  # some seen, or the page ended early
            mine = [n for n, claim in enumerate(claims) if claim is Claim.CLAIMED]
        if self.floor:  # asked for only as the day early below a sync's range (edges.py)
            floor = self.floor
            low = {n for n, when in enumerate(modified) if when and when[:10] < floor}
            if low:
                mine = [n for n in (range(len(keys)) if mine is None else mine) if n not in low]
        if mine is None and items.block is not None:  # all of them: the block as it is
            fresh = await ctx.sink.write_block(keys, items.block, items.ends)
            self._written(ctx, items, fresh, counter)
        elif mine is None or mine:
            if mine is not None:
                keys, lines, modified = _pick(mine, keys, items.lines, modified)
                items = Items(keys, lines, modified)
            fresh = await ctx.sink.write_many(items.keys, items.lines)
            self._written(ctx, items, fresh, counter)
        last = claims[-1]
        return last if last is Claim.RESTART or last is Claim.MET else None

    def _written(
        self, ctx: RunContext, items: Items, fresh: list[bool], counter: list[int] | None
    ) -> None:
        """Counts the records the sink took; the catch-up's versions and start-day fingerprints."""
        new = fresh.count(True)
        ctx.progress.records += new
        if counter is not None:
            counter[0] += new
        latest, day = self.latest, self.start_day
        if latest is None:
            # One substring search per chunk first: most chunks hold no start-day change.
            dates = "\n".join(filter(None, items.modified))
            if not any(d in dates for d in day):
                return
            for n, when in enumerate(items.modified):
                if when is not None and when.startswith(day) and fresh[n]:
                    self.fingerprints.fingerprint(items.keys[n], items.lines[n])
            return
        for key, line, took in zip(items.keys, items.lines, fresh, strict=True):
            if took:
                latest.written(key)
            else:
                latest.met_again(key, line)


def _refused(exc: Unauthorized) -> None:
    """A 401 on a page: the configured credentials are wrong (``AuthError``, exit 3)."""
    raise AuthError(
        f"nobb: the server refused the credentials from nobb.username / nobb.password "
        f"(HTTP {exc.status} at {PATH}) [{exc.request}]"
    ) from None


def _pick(
    at: list[int], keys: list[int], lines: list[bytes], modified: list[str | None]
) -> tuple[list[int], list[bytes], list[str | None]]:
    """The entries at positions ``at`` of three parallel lists."""
    return [keys[n] for n in at], [lines[n] for n in at], [modified[n] for n in at]
