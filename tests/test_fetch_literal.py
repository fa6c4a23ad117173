"""The fetchers on literal pages: NOBB pages and DBK windows given as bytes, no socket.

``Endpoint`` sends through any ``Client``; here it is ``Pages``, which answers each request with
the next literal answer (status, headers, body) and records the requests. What the fetchers do
with an answer (the records written, the walk's claims, the statuses they take as their own) is
asserted exactly; the socket, the simulator and the limiter's pacing are other tests'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import cast

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from harvester.config import DbkConfig, Secret
from harvester.engine.http_settings import HttpSettings
from harvester.engine.limiter import RateLimiter
from harvester.engine.messages import Request, Response
from harvester.engine.retry import RetryPolicy
from harvester.errors import AuthError
from harvester.parse.onix_pool import OnixConverter
from harvester.plan.walk import Claim, Partition, Seam, Walk
from harvester.plan.windows import Window
from harvester.progress import Progress
from harvester.sources.base import Key, RunContext
from harvester.sources.dbk_auth import DbkSession
from harvester.sources.dbk_fetch import EXPORT, Fetched, WindowFetcher
from harvester.sources.endpoint import Endpoint
from harvester.sources.nobb_fetch import PATH, PageFetcher
from harvester.store.run_state import RunState

Answer = tuple[int, dict[str, str], bytes]


class Pages:
    """A ``Client`` answering each request with the next literal answer, 7 bytes a chunk."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[Request] = []

    @asynccontextmanager
    async def stream(self, request: Request) -> AsyncIterator[Response]:
        self.sent.append(request)
        status, headers, body = self.answers.pop(0)

        async def chunks(size: int) -> AsyncIterator[bytes]:
            for at in range(0, len(body), 7):  # small chunks: items cut across them
                yield body[at : at + 7]

        yield Response(status, CIMultiDictProxy(CIMultiDict(headers)), chunks, request,
                       HttpSettings())  # fmt: skip


class StepClock:
    """Time stands still but for sleeps, which advance it at once and are recorded."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class Sink:
    """Records in memory, in order; a key already written is dropped, as ``ShardSink`` does."""

    def __init__(self) -> None:
        self.records: dict[Key, bytes] = {}

    async def write(self, key: Key, line: bytes) -> bool:
        if key in self.records:
            return False
        self.records[key] = line
        return True

    async def write_many(self, keys: Sequence[Key], lines: Sequence[bytes]) -> list[bool]:
        return [await self.write(key, line) for key, line in zip(keys, lines, strict=True)]

    async def write_block(
        self, keys: Sequence[Key], data: bytes | bytearray | memoryview, ends: list[int]
    ) -> list[bool]:
        lines = [bytes(data[a : b - 1]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
        return await self.write_many(keys, lines)


class _Run:
    """The one part of ``RunState`` a fetcher reaches: the sink."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink


def _ctx(source: str, sink: Sink, clock: StepClock) -> RunContext:
    return RunContext(source=source, mode="dump", clock=clock, progress=Progress(source=source),
                      run=cast(RunState, _Run(sink)))  # fmt: skip


def _endpoint(source: str, pages: Pages, clock: StepClock) -> Endpoint:
    return Endpoint(source=source, http=pages, clock=clock, policy=RetryPolicy(attempts=3),
                    limiter=RateLimiter.from_setting("0", clock=clock, name=source),
                    log=logging.getLogger(f"harvester.{source}"))  # fmt: skip


def _item(key: int, when: str) -> bytes:
    return b'{"nobbNumber":%d,"status":{"lastModifiedDate":"%s"},"name":"n%d"}' % (
        key, when.encode(), key,
    )  # fmt: skip


def _fetcher(pages: Pages, clock: StepClock) -> PageFetcher:
    auth = (("Authorization", "Basic dTpw"),)
    return PageFetcher(endpoint=_endpoint("nobb", pages, clock), auth=auth,
                       start_day=("2099-01-01",))  # fmt: skip


async def test_a_nobb_page_writes_its_items_and_returns_its_headers() -> None:
    """A literal page: its items written in order, claimed by the walk, its headers returned."""
    items = [_item(3, "2024-01-02T10:00:00"), _item(7, "2024-01-03T11:00:00")]
    body = b"[" + b",".join(items) + b"]"
    pages = Pages((200, {"x-totalHits": "2", "Content-Type": "application/json"}, body))
    clock, sink = StepClock(), Sink()
    ctx = _ctx("nobb", sink, clock)
    walk = Walk(Partition("2024-01-01", "2024-01-31"), "asc", Seam(), page_size=2)
    counter = [0]
    headers = await _fetcher(pages, clock).fetch(ctx, walk.first_request(), walk, counter,
                                                 label=walk.label)  # fmt: skip
    assert headers == {"x-totalHits": "2", "Content-Type": "application/json"}
    assert sink.records == {3: items[0], 7: items[1]}
    assert list(sink.records) == [3, 7]
    assert counter == [2] and ctx.progress.records == 2 and ctx.progress.requests == 1
    assert ctx.progress.bytes_in == len(body)
    assert walk.on_items([7]) == [Claim.SEEN]  # the page's keys are the walk's now
    [sent] = pages.sent
    assert (sent.method, sent.url) == ("GET", PATH)
    assert dict(sent.params) == {"from": "2024-01-01", "to": "2024-01-31", "pageSize": "2",
                                 "sortField": "NobbNo", "sortOrder": "asc"}  # fmt: skip


async def test_a_nobb_202_is_waited_out_and_a_400_on_a_page_token_is_an_expired_chain() -> None:
    """202 then 200: one wait of Retry-After, no retry spent; a 400 answering a token: None."""
    body = b"[" + _item(1, "2024-01-02T10:00:00") + b"]"
    pages = Pages((202, {"Retry-After": "4"}, b""), (200, {}, body),
                  (400, {}, b'{"message":"bad token"}'))  # fmt: skip
    clock, sink = StepClock(), Sink()
    ctx = _ctx("nobb", sink, clock)
    fetcher = _fetcher(pages, clock)
    walk = Walk(Partition("2024-01-01", "2024-01-31"), "asc", Seam(), page_size=1)
    assert await fetcher.fetch(ctx, walk.first_request(), walk, None, label="p") == {}
    assert clock.slept == [4.0]
    assert (ctx.progress.accepted, ctx.progress.retries, ctx.progress.requests) == (1, 0, 2)
    assert list(sink.records) == [1]
    token = {"from": "2024-01-01", "pageToken": "t2"}
    assert await fetcher.fetch(ctx, token, walk, None, label="p") is None
    assert pages.answers == [] and ctx.progress.retries == 0


async def test_a_nobb_401_is_an_auth_error_naming_the_keys() -> None:
    """A 401 on a page: AuthError naming nobb.username / nobb.password, asked once."""
    pages = Pages((401, {}, b'{"message":"no"}'))
    clock = StepClock()
    with pytest.raises(AuthError, match=r"nobb\.username / nobb\.password \(HTTP 401 at "):
        await _fetcher(pages, clock).fetch(_ctx("nobb", Sink(), clock), {}, None, None,
                                           label="probe")  # fmt: skip
    assert len(pages.sent) == 1


NS = "http://ns.editeur.org/onix/3.1/reference"


def _product(ref: str, stamp: str) -> str:
    return (f'<Product datestamp="{stamp}"><RecordReference>{ref}</RecordReference>'
            "<NotificationType>03</NotificationType></Product>")  # fmt: skip


def _onix(*products: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ONIXMessage xmlns="{NS}" release="3.1">'
            "<Header><Sender><SenderName>DBK</SenderName></Sender>"
            f"<SentDateTime>20250204T1000Z</SentDateTime></Header>\n{''.join(products)}\n"
            "</ONIXMessage>\n").encode()  # fmt: skip


def _ts(text: str) -> int:
    return int(datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC).timestamp())


async def _window(
    pages: Pages, sink: Sink, window: Window
) -> tuple[Fetched, list[tuple[Key, bool]], Progress]:
    clock = StepClock()
    config = DbkConfig(
        base_url="http://127.0.0.1:1", username=Secret("u"), password=Secret("p"), workers=0
    )
    session = DbkSession(config, pages, clock, policy=RetryPolicy(attempts=1))
    session.token, session.expires = "tok", clock.time() + 3600
    seen: list[tuple[Key, bool]] = []
    ctx = _ctx("dbk", sink, clock)
    async with OnixConverter(0) as conv:
        fetcher = WindowFetcher(cfg=config, endpoint=_endpoint("dbk", pages, clock),
                                session=session, conv=conv,
                                on_record=lambda key, _, new: seen.append((key, new)))  # fmt: skip
        got = await fetcher.fetch(ctx, window, stop_when_full=True,
                                  bounds=(window.start, window.end))  # fmt: skip
    return got, seen, ctx.progress


async def test_a_dbk_window_writes_its_products() -> None:
    """A literal ONIX body: each product written once, counted, its edge datestamp noted."""
    lo, hi = _ts("20250101T000000"), _ts("20250102T000000")
    body = _onix(_product("dk.a", "20250101T0000Z"), _product("dk.b", "20250101T0930Z"),
                 _product("dk.a", "20250101T0000Z"))  # fmt: skip
    pages, sink = Pages((200, {"Content-Type": "application/xml"}, body)), Sink()
    got, seen, progress = await _window(pages, sink, Window(lo, hi))
    assert list(sink.records) == ["dk.a", "dk.b"]
    assert all(sink.records[k].startswith(b'{"record_reference":"%s"' % k.encode())
               for k in ("dk.a", "dk.b"))  # fmt: skip
    assert seen == [("dk.a", True), ("dk.b", True), ("dk.a", False)]
    assert (got.count, got.written, got.at_edges, got.refused) == (3, 2, [lo, lo], None)
    assert progress.records == 2 and progress.requests == 1
    [sent] = pages.sent
    assert (sent.method, sent.url, sent.headers) == ("GET", EXPORT, (("Authorization",
                                                                      "Bearer tok"),))  # fmt: skip
    assert dict(sent.params) == {"updatedFrom": "20250101T000000+0000",
                                 "updatedTo": "20250102T000000+0000"}  # fmt: skip


async def test_a_dbk_413_is_a_refusal_to_split_never_retried() -> None:
    """A 413 stating its cap: refused (split), the cap read, nothing written, one request."""
    lo, hi = _ts("20250101T000000"), _ts("20250102T000000")
    refusal = b'{"message":"Too many products: the export is limited to 500 products"}'
    pages, sink = Pages((413, {}, refusal)), Sink()
    got, seen, progress = await _window(pages, sink, Window(lo, hi))
    assert (got.refused, got.stated_cap, got.count) == (
        "HTTP 413: Too many products: the export is limited to 500 products",
        500,
        0,
    )
    assert sink.records == {} and seen == [] and len(pages.sent) == 1
    assert progress.retries == 0


async def test_a_dbk_401_authenticates_again_and_asks_the_window_again() -> None:
    """A 401 on a window: one new login, the window asked again with the new token, no retry."""
    lo, hi = _ts("20250101T000000"), _ts("20250101T000100")
    pages = Pages((401, {}, b'{"message":"expired"}'), (200, {}, b'{"token":"h.p.s"}'),
                  (204, {}, b""))  # fmt: skip
    got, seen, progress = await _window(pages, Sink(), Window(lo, hi))
    assert [(r.method, r.url, r.headers) for r in pages.sent] == [
        ("GET", EXPORT, (("Authorization", "Bearer tok"),)),
        ("POST", "/dwapi/users/authenticate", ()),
        ("GET", EXPORT, (("Authorization", "Bearer h.p.s"),)),
    ]
    assert pages.sent[1].json == {"username": "u", "password": "p"}
    assert (got.count, got.written, got.refused, seen) == (0, 0, None, [])
    assert (progress.requests, progress.retries) == (2, 0)


@pytest.mark.parametrize("workers", [0, 1])
async def test_up_to_one_worker_converts_in_this_process(workers: int) -> None:
    """workers = 0 or 1: a batch is converted at submit, in this process; no child starts."""
    import multiprocessing

    from harvester.parse.onix import convert_batch, read_header
    from harvester.parse.onix_split import Batch, OnixSplitter, Prologue

    splitter = OnixSplitter()
    body = _onix(_product("dk.a", "20250101T0000Z"), _product("dk.b", "20250101T0930Z"))
    pieces = [*splitter.feed(body), *splitter.close()]
    prologue = next(p for p in pieces if isinstance(p, Prologue))
    (batch,) = [p for p in pieces if isinstance(p, Batch)]
    src = read_header(prologue.document)
    async with OnixConverter(workers) as conv:
        fut = conv.submit(prologue, src, batch)
        assert fut.done() and multiprocessing.active_children() == []
        rows = await conv.result(fut, label="t")
    assert rows == convert_batch(prologue.root_open, prologue.root_tag, batch.data, src)
    assert [key for key, _, _ in rows] == ["dk.a", "dk.b"]


async def test_two_workers_are_this_process_and_one_more() -> None:
    """workers = 2: two batches here first, then one child holding two at most; in order."""
    import multiprocessing

    from harvester.parse.onix import convert_batch, read_header
    from harvester.parse.onix_split import Batch, OnixSplitter, Prologue

    splitter = OnixSplitter(batch_bytes=1)  # one product a batch
    refs = [f"dk.{n}" for n in range(12)]
    body = _onix(*(_product(ref, "20250101T0000Z") for ref in refs))
    pieces = [*splitter.feed(body), *splitter.close()]
    prologue = next(p for p in pieces if isinstance(p, Prologue))
    batches = [p for p in pieces if isinstance(p, Batch)]
    src = read_header(prologue.document)
    async with OnixConverter(2) as conv:
        futs = [conv.submit(prologue, src, b) for b in batches]
        here = [f.done() for f in futs]  # converted at submit: done before the loop runs again
        children = multiprocessing.active_children()
        rows = [r for f in futs for r in await conv.result(f, label="t")]
    assert len(batches) == 12 and len(children) == 1
    # The first two here (their shapes then go with the next), the child holds two (it is still
    # starting up), then here again.
    assert here[:5] == [True, True, False, False, True]
    expected = [convert_batch(prologue.root_open, prologue.root_tag, b.data, src) for b in batches]
    assert rows == [r for batch in expected for r in batch]
    assert [key for key, _, _ in rows] == refs
