"""HttpClient over real sockets: decompression, bombs, truncation, resets, status mapping."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import brotli
import pytest
from aiohttp import web

from harvester.engine.http import HttpClient, HttpSettings, Request, raise_for_status
from harvester.errors import (
    BodyTooLarge,
    ClientError,
    ConfigError,
    ConnectError,
    RateLimited,
    RequestTimeout,
    ServerError,
    TruncatedBody,
    Unauthorized,
)

PLAIN = b'{"nobbNumber": 1, "text": "\xc3\xa6\xc3\xb8\xc3\xa5"}\n' * 5000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/x", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def _get(url: str, settings: HttpSettings | None = None) -> tuple[int, bytes]:
    req = Request(method="GET", url="/x", label="test GET /x")
    async with HttpClient(settings or HttpSettings(), base_url=url) as client:
        async with client.stream(req) as resp:
            body = b"".join([c async for c in resp.chunks()])
            return resp.status, body


def _encoded(data: bytes, encoding: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.headers["Accept-Encoding"] == "gzip, br;q=0.5"
        return web.Response(body=data, headers={"Content-Encoding": encoding})

    return handler


@pytest.mark.parametrize(
    ("encoding", "body"),
    [("gzip", gzip.compress(PLAIN)), ("br", brotli.compress(PLAIN)), ("identity", PLAIN)],
)
async def test_bodies_are_decompressed(encoding: str, body: bytes) -> None:
    """gzip, br and identity bodies all stream out as the original bytes."""
    async for url in _serve(_encoded(body, encoding)):
        assert await _get(url) == (200, PLAIN)


@pytest.mark.parametrize("encoding", ["gzip", "br"])
async def test_compression_bombs_stop_at_the_cap(encoding: str) -> None:
    """A small body that inflates past max_body_bytes is BodyTooLarge, caught near the cap."""
    zeros = b"\0" * (64 << 20)
    bomb = gzip.compress(zeros) if encoding == "gzip" else brotli.compress(zeros)
    async for url in _serve(_encoded(bomb, encoding)):
        with pytest.raises(BodyTooLarge, match=r"exceeds 1048576 bytes \[test GET /x\]"):
            await _get(url, HttpSettings(max_body_bytes=1 << 20))


async def test_truncated_gzip_is_a_truncated_body() -> None:
    """A gzip stream that stops before its end marker is TruncatedBody (retryable)."""
    cut = gzip.compress(PLAIN)[:-20]
    async for url in _serve(_encoded(cut, "gzip")):
        with pytest.raises(TruncatedBody, match="ended early"):
            await _get(url)


async def test_corrupt_gzip_is_a_truncated_body() -> None:
    """Garbage in a gzip stream is reported as a broken body, not a raw zlib error."""
    body = bytearray(gzip.compress(PLAIN))
    body[30:40] = b"\xff" * 10
    async for url in _serve(_encoded(bytes(body), "gzip")):
        with pytest.raises(TruncatedBody):
            await _get(url)


async def test_reset_mid_body() -> None:
    """A connection dropped part-way through a body is TruncatedBody."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.content_length = len(PLAIN)
        await resp.prepare(request)
        await resp.write(PLAIN[:1000])
        assert request.transport is not None
        request.transport.abort()
        return resp

    async for url in _serve(handler):
        with pytest.raises(TruncatedBody, match="broke mid-body"):
            await _get(url)


async def test_slow_first_byte_times_out() -> None:
    """No answer within first_byte_timeout is RequestTimeout."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(1)
        return web.Response()

    async for url in _serve(handler):
        with pytest.raises(RequestTimeout):
            await _get(url, HttpSettings(first_byte_timeout=0.2))


async def test_connection_refused() -> None:
    """Nothing listening is ConnectError."""
    async for url in _serve(_encoded(b"", "identity")):
        dead = url
    with pytest.raises(ConnectError):
        await _get(dead)


@pytest.mark.parametrize(
    ("status", "headers", "error", "message"),
    [
        (500, {}, ServerError, "HTTP 500: boom"),
        (429, {"Retry-After": "7"}, RateLimited, "HTTP 429"),
        (401, {}, Unauthorized, "HTTP 401"),
        (404, {}, ClientError, "HTTP 404: boom"),
    ],
)
async def test_status_mapping(
    status: int, headers: dict[str, str], error: type[Exception], message: str
) -> None:
    """Error statuses map onto the error tree with the server's message and the request label."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "boom"}, status=status, headers=headers)

    async for url in _serve(handler):
        req = Request(method="GET", url="/x", label="nobb GET /x")
        async with HttpClient(HttpSettings(), base_url=url) as client:
            async with client.stream(req) as resp:
                with pytest.raises(error, match=message) as info:
                    raise_for_status(resp, req, await resp.read(2048))
    assert "[nobb GET /x]" in str(info.value)
    if status == 429:
        assert isinstance(info.value, RateLimited)
        assert info.value.retry_after == 7.0


def test_plain_http_only_to_loopback() -> None:
    """Plain http to a non-loopback host is refused before any connection is made."""
    with pytest.raises(ConfigError, match="only to loopback"):
        HttpClient(HttpSettings(), base_url="http://example.com")
    HttpClient(HttpSettings(), base_url="http://127.0.0.1:1")


async def test_aclose_is_idempotent() -> None:
    """Closing twice is fine; a closed client refuses new requests."""
    client = HttpClient(HttpSettings(), base_url="http://127.0.0.1:1")
    await client.aclose()
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        async with client.stream(Request(method="GET", url="/")):
            pass
