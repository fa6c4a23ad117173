"""One DBK export window: its request, the limiter, retries, re-authentication, body → records.

``WindowFetcher.fetch`` sends ``updatedFrom``/``updatedTo`` (and the configured ``publisher`` /
``productIds``) as GET query parameters or a POST JSON body through ``Endpoint.send`` (the source's
limiter, retries), with the session's bearer token; a 401 makes the session authenticate again once
(``dbk_auth.py``), 429s wait on the limiter, other retryable failures retry the whole window
(records already written are dropped by the sink's key set). 204 is an empty window. A 413, or a 400
whose message says "too many" (``too_many``), is no error: ``Fetched.refused`` says the window is to
be split.

A body is cut at product boundaries as it streams in (``parse/onix_split.py``) and held until it
is known not to be cut off (at most ``max_products_per_response`` products); its batches are then
converted in the process pool (``parse/onix_pool.py``) and written. A response that reaches the
cap is dropped unconverted: ``Fetched.seen`` carries its products' datestamps so the planner can
split the window where they are. Every converted record is reported to ``on_record(key, line,
new)``, ``new`` False when the sink already had the key.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from harvester.config import DbkConfig
from harvester.engine.messages import Request
from harvester.engine.statuses import problem_text, raise_for_status
from harvester.parse.onix import Converted, Src, product_times
from harvester.parse.onix_pool import Converting, OnixConverter
from harvester.parse.onix_split import Batch, OnixSplitter, Prologue
from harvester.plan.windows import Window, sent_time
from harvester.plural import counted
from harvester.sources.base import Key, RunContext
from harvester.sources.dbk_auth import DbkSession
from harvester.sources.endpoint import Answer, Endpoint

__all__ = ["EXPORT", "Fetched", "WindowFetcher", "too_many"]

log = logging.getLogger("harvester.dbk")
EXPORT = "/onix/document/export/v3.1"


class _Full(Exception):
    """The response reached the cap: stop reading it, the window will be split."""


@dataclass(slots=True)
class Fetched:
    """What one window's response held."""

    count: int = 0  #: products in the response (at least the cap when it was cut off)
    written: int = 0  #: records the sink did not have yet
    seen: list[int] = field(default_factory=list)  #: datestamps of a cut-off response
    #: Datestamps equal to the ``updatedFrom`` / ``updatedTo`` sent (proof of the edge reading).
    at_edges: list[int] = field(default_factory=list)
    seconds: bool = False  #: some datestamp was not on a whole minute
    outside: int = 0  #: products from the one-second overlap outside the window (edges.py)
    #: The server refused the window as holding too many products (413, or a 400 saying so):
    #: its status and message. The window is split like a full answer; nothing was written.
    refused: str | None = None
    stated_cap: int | None = None  #: the cap the refusal's message states, if it gives one
    #: A datestamp with seconds inside the bounds sent: a second known to hold a product.
    inside: int | None = None


@dataclass(slots=True, kw_only=True)
class WindowFetcher:
    """Fetches windows for one run (module docstring)."""

    cfg: DbkConfig
    endpoint: Endpoint
    session: DbkSession
    conv: OnixConverter
    on_record: Callable[[Key, bytes, bool], None]
    #: The run's first second: an overlap second below it is the previous run's (not written).
    floor: int | None = None

    async def fetch(
        self, ctx: RunContext, w: Window, *, stop_when_full: bool, bounds: tuple[int, int]
    ) -> Fetched:
        """One window, asked as ``bounds`` (``updatedFrom``, ``updatedTo``: edges.py), retried
        as a whole; ``FetchError`` when the retries run out."""
        out = Fetched()
        token = ""
        splitter = OnixSplitter(label="")
        converted = [0]

        async def prepare() -> Request:
            nonlocal token, splitter
            out.count = out.outside = 0
            out.refused, out.stated_cap, out.inside = None, None, None
            out.seen.clear()
            out.at_edges.clear()
            token = await self.session.bearer()
            request = self._request(w, bounds, token)
            splitter = OnixSplitter(label=request.label)
            converted[0] = 0
            return request

        async def window(answer: Answer) -> Fetched:
            resp, request = answer.response, answer.request
            if resp.status == 401:
                await self.session.after_401(token)
            if resp.status in (400, 413):
                body = await resp.read(2048)
                if (refusal := too_many(resp.status, body)) is not None:
                    out.refused, out.stated_cap = refusal
                    return out
                raise_for_status(resp, request, body)
            await self.endpoint.refuse(answer, ctx.progress)
            self.session.confirm(token)
            if resp.status == 204:
                return out
            cap = self.cfg.max_products_per_response if stop_when_full else None
            await self._stream(
                ctx, resp.chunks(), splitter, request.label, out, converted, cap, w, bounds
            )
            # The workers' count guards the splitter's (a product end it did not see).
            out.count = max(splitter.products, converted[0])
            return out

        try:
            return await self.endpoint.send(
                prepare,
                window,
                progress=ctx.progress,
                what=f"dbk window {w.id}",
                partition=w.id,
                numbered=True,
                detail=lambda: counted(splitter.products, "product"),
                unauthorized=lambda _: None,  # the session authenticated again (after_401)
            )
        except _Full:
            out.count = splitter.products
            _edge_times(out, out.seen, bounds)
            return out

    def _request(self, w: Window, bounds: tuple[int, int], token: str) -> Request:
        cfg = self.cfg
        filters: dict[str, Any] = {
            "updatedFrom": sent_time(bounds[0]),
            "updatedTo": sent_time(bounds[1]),
        }
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

    async def _stream(
        self,
        ctx: RunContext,
        chunks: AsyncIterator[bytes],
        splitter: OnixSplitter,
        label: str,
        out: Fetched,
        converted: list[int],
        cap: int | None,
        w: Window,
        bounds: tuple[int, int],
    ) -> None:
        """Read one body: hold its batches until it is known not to be cut off, then convert.

        Holding is bounded by the cap; past it (a one-second window, read whole, ``cap`` None)
        batches are converted as they arrive, at most ``2 × workers`` pending.
        """
        pending: deque[Converting] = deque()
        held: list[Batch] = []
        streaming = False
        prologue: Prologue | None = None
        src: Src = {}
        limit = max(2, 2 * self.cfg.workers)

        async def drain(keep: int) -> None:
            while len(pending) > keep:
                records = await self.conv.result(pending.popleft(), label=label)
                converted[0] += len(records)
                await self._write(ctx, out, records, w, bounds)

        try:
            async for chunk in chunks:
                ctx.progress.bytes_in += len(chunk)
                for piece in splitter.feed(chunk):
                    if isinstance(piece, Prologue):
                        prologue, src = piece, self.conv.header(piece, label=label)
                    elif streaming:
                        assert prologue is not None
                        pending.append(self.conv.submit(prologue, src, piece))
                        await drain(limit)
                    else:
                        held.append(piece)
                if not streaming and cap is not None and splitter.products >= cap:
                    out.seen.extend(t for b in held for t in product_times(b.data))
                    raise _Full
                if not streaming and splitter.products >= self.cfg.max_products_per_response:
                    streaming = True
                    assert prologue is not None
                    pending.extend(self.conv.submit(prologue, src, b) for b in splitter.join(held))
                    held.clear()
                    await drain(limit)
            for piece in splitter.close():
                prologue, src = piece, self.conv.header(piece, label=label)
            if held:
                assert prologue is not None
                pending.extend(self.conv.submit(prologue, src, b) for b in splitter.join(held))
            await drain(0)
        finally:
            for fut in pending:
                fut.cancel()

    async def _write(
        self,
        ctx: RunContext,
        out: Fetched,
        records: list[Converted],
        w: Window,
        bounds: tuple[int, int],
    ) -> None:
        """Write one batch's records; those of the overlap beyond ``w`` count as outside."""
        _edge_times(out, (t for _, _, t in records if t is not None), bounds)
        # The seconds asked for beyond the window itself (edges.py): the neighbours' records.
        beyond = {t for t in bounds if not w.start <= t < w.end}  # None is never in it
        below = {t for t in beyond if self.floor is not None and t < self.floor}
        if below:  # asked for only as the overlap below the whole run: not written
            kept = [r for r in records if r[2] not in below]
            out.outside += len(records) - len(kept)
            records = kept
        # One key-set pass and one hand-over check for the batch, not one await per record.
        fresh = await ctx.sink.write_many([r[0] for r in records], [r[1] for r in records])
        written = fresh.count(True)
        ctx.progress.records += written
        out.written += written
        for (key, line, t), new in zip(records, fresh, strict=True):
            if t in beyond:
                out.outside += 1  # the overlap's: a neighbour's record, not a newer one
            else:
                self.on_record(key, line, new)


def _edge_times(out: Fetched, times: Iterable[int], bounds: tuple[int, int]) -> None:
    """Note the datestamps at the edges sent, and whether any stamp carries seconds."""
    lo, hi = bounds
    for t in times:
        if t in (lo, hi):
            out.at_edges.append(t)
        if t % 60:
            out.seconds = True
            if lo <= t < hi:
                out.inside = t


_TOO_MANY = re.compile(r"too (many|large|big)|smaller|exceed|limited to|at most|maximum", re.I)
_STATED = (
    re.compile(r"(\d[\d,.]*)\s*(?:products|items|records|results)", re.I),
    re.compile(r"(?:limit\w*|max\w*|at most)\D{0,24}?(\d[\d,.]*)", re.I),
)


def too_many(status: int, body: bytes) -> tuple[str, int | None] | None:
    """A refusal of a window as too many products: ``(why, stated cap)``, or None.

    Every 413 is one ("Content Too Large"; some exports add "try with a smaller pagesize"); a
    400 is one when its message says so ("Too many products: the export is limited to 500
    products per request"). The cap is the first number the message ties to products or to a
    limit, if any. Never a transient error: the same window is refused every time.
    """
    text = problem_text(body)
    if status != 413 and not _TOO_MANY.search(text):
        return None
    stated = None
    for pattern in _STATED:
        if m := pattern.search(text):
            digits = re.sub(r"\D", "", m.group(1))
            if digits and 0 < int(digits) < 10**7:
                stated = int(digits)
                break
    return f"HTTP {status}" + (f": {text}" if text else ""), stated
