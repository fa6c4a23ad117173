"""Sending simulated answers: latency, content negotiation, streamed compression, faults.

``send`` streams a body given as an iterable of byte pieces: the pieces are gathered into
~64 KB chunks, compressed incrementally (the offered coding with the highest q, ``br`` over
``gzip`` when both are offered alike, identity otherwise, at a low level so the simulator stays
fast) and sent with chunked transfer encoding, so no body is ever built whole in memory;
``encoding`` other than ``negotiate`` is a server that knows only that one, whatever is offered.
Latency is applied before the first byte. A fault chosen by ``faults.py`` changes how the body
goes out: reset mid-body, trickled, a truncated compressed stream, or garbage in the middle.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterable, Iterable
from typing import Any, Protocol

import brotli
import orjson
from aiohttp import web

from harvester.sim.faults import Fault

__all__ = ["Encoder", "choose_encoding", "json_error", "send"]

CHUNK = 64 * 1024


class Encoder(Protocol):
    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Gzip:
    def __init__(self) -> None:
        self._z = zlib.compressobj(1, zlib.DEFLATED, 31)

    def feed(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def finish(self) -> bytes:
        return self._z.flush()


class _Brotli:
    def __init__(self) -> None:
        self._b = brotli.Compressor(quality=1)

    def feed(self, data: bytes) -> bytes:
        return bytes(self._b.process(data))

    def finish(self) -> bytes:
        return bytes(self._b.finish())


def choose_encoding(accept: str) -> str:
    """The offered coding with the highest q (RFC 9110 12.5.3); ``br`` wins a tie with ``gzip``.

    q=0 refuses a coding; nothing offered (or only unknown codings) is ``identity``.
    """
    best, best_q = "identity", 0.0
    for part in accept.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if name not in ("br", "gzip") or q <= 0:
            continue
        if q > best_q or (q == best_q and name == "br"):
            best, best_q = name, q
    return best


def _encoder(name: str) -> Encoder:
    if name == "br":
        return _Brotli()
    if name == "gzip":
        return _Gzip()
    return _Identity()


async def _pieces(body: Iterable[bytes] | AsyncIterable[bytes]) -> AsyncIterable[bytes]:
    buf: list[bytes] = []
    size = 0
    if isinstance(body, AsyncIterable):
        async for piece in body:
            buf.append(piece)
            size += len(piece)
            if size >= CHUNK:
                yield b"".join(buf)
                buf, size = [], 0
    else:
        for piece in body:
            buf.append(piece)
            size += len(piece)
            if size >= CHUNK:
                yield b"".join(buf)
                buf, size = [], 0
                await asyncio.sleep(0)  # let other connections in between chunks
    if buf:
        yield b"".join(buf)


async def send(
    request: web.Request,
    body: Iterable[bytes] | AsyncIterable[bytes],
    **kwargs: Any,
) -> web.StreamResponse:
    """Stream ``body`` as the answer to ``request``; see the module docstring.

    A client that hangs up early (it may: a walk stops where it meets the other end) ends the
    answer quietly.
    """
    try:
        return await _send(request, body, **kwargs)
    except ConnectionError:
        return web.StreamResponse()


async def _send(
    request: web.Request,
    body: Iterable[bytes] | AsyncIterable[bytes],
    *,
    content_type: str,
    headers: dict[str, str],
    latency: float = 0.0,
    fault: Fault = "none",
    status: int = 200,
    encoding: str = "negotiate",
) -> web.StreamResponse:
    if latency > 0:
        await asyncio.sleep(latency)
    if encoding == "negotiate":  # else a server that knows one encoding, whatever is offered
        encoding = choose_encoding(request.headers.get("Accept-Encoding", ""))
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = content_type.split(";")[0]
    if "charset=" in content_type:
        response.charset = content_type.split("charset=")[1]
    if encoding != "identity":
        response.headers["Content-Encoding"] = encoding
    response.headers["Vary"] = "Accept-Encoding"
    response.enable_chunked_encoding()
    await response.prepare(request)
    encoder = _encoder(encoding)
    sent = 0
    async for chunk in _pieces(body):
        if fault == "malformed":
            await response.write(encoder.feed(chunk[: len(chunk) // 2] + b"\x00<<corrupt>>{[\xff"))
            await response.write(encoder.finish())
            await response.write_eof()
            return response
        out = encoder.feed(chunk)
        if fault == "slow":
            for i in range(0, len(out), 4096):
                await response.write(out[i : i + 4096])
                await asyncio.sleep(0.002)
        elif out:
            await response.write(out)
        sent += len(chunk)
        if fault == "reset" and sent > 0:
            if request.transport is not None:
                request.transport.abort()
            return response
        if fault == "truncate" and sent > 0 and encoding != "identity":
            # End the HTTP body properly but leave the compressed stream unfinished.
            await response.write_eof()
            return response
    await response.write(encoder.finish())
    await response.write_eof()
    return response


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A small JSON error answer (NOBB style)."""
    body = orjson.dumps({"status": status, "message": message})
    return web.Response(
        status=status, body=body, content_type="application/json", headers=headers or {}
    )
