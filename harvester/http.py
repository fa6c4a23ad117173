"""The one seam to the network: aiohttp's client lives here and nowhere else in the harvester.

``HttpClient`` (one per API) streams responses: ``async with client.stream(request) as resp`` gives
the status, case-insensitive headers and ``resp.chunks()``, the body decompressed chunk by chunk.
Decompression is ours, not aiohttp's, so a compression bomb stops at ``max_body_bytes`` without
ever holding more than about one chunk beyond the cap, and a compressed stream that ends before
its end marker is a ``TruncatedBody``. Every aiohttp, OS and timeout exception is translated here,
once, into ``harvester.errors``; messages carry the request's label, never headers or secrets.
Plain ``http://`` is refused for anything but loopback.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import brotli
import orjson
from multidict import CIMultiDictProxy

from harvester.config import is_loopback
from harvester.errors import (
    BodyTooLarge,
    ClientError,
    ConfigError,
    ConnectError,
    RateLimited,
    ServerError,
    TimeoutError_,
    TruncatedBody,
    Unauthorized,
)

__all__ = ["HttpClient", "HttpSettings", "Request", "Response", "raise_for_status"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """Connection limits and timeouts of one API's client."""

    concurrency: int = 4
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    read_timeout: float = 60.0
    max_body_bytes: int = 2 << 30
    chunk_size: int = 1 << 16
    user_agent: str = "harvester/0.1"
    #: What the client offers; "identity" saves CPU on both ends where bandwidth is free.
    accept_encoding: str = "gzip, br"

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_body_bytes < 1 or self.chunk_size < 1:
            raise ConfigError("concurrency, max_body_bytes and chunk_size must be positive")
        if min(self.connect_timeout, self.first_byte_timeout, self.read_timeout) <= 0:
            raise ConfigError("timeouts must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One request. ``label`` names it in errors and logs; ``headers`` never appear there."""

    method: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    json: object = None
    headers: tuple[tuple[str, str], ...] = ()
    label: str = ""


class _Decoder(Protocol):
    def feed(self, data: bytes, limit: int) -> bytes: ...

    def more(self, limit: int) -> bytes: ...

    def finished(self) -> bool: ...


class _Identity:
    def feed(self, data: bytes, limit: int) -> bytes:
        return data

    def more(self, limit: int) -> bytes:
        return b""

    def finished(self) -> bool:
        return True


class _Gzip:
    def __init__(self, wbits: int) -> None:
        self._z = zlib.decompressobj(wbits)

    def feed(self, data: bytes, limit: int) -> bytes:
        return self._z.decompress(self._z.unconsumed_tail + data, limit)

    def more(self, limit: int) -> bytes:
        return (
            self._z.decompress(self._z.unconsumed_tail, limit) if self._z.unconsumed_tail else b""
        )

    def finished(self) -> bool:
        return self._z.eof


class _Brotli:
    def __init__(self) -> None:
        self._b = brotli.Decompressor()

    def feed(self, data: bytes, limit: int) -> bytes:
        return bytes(self._b.process(data, output_buffer_limit=limit))

    def more(self, limit: int) -> bytes:
        # Pending output may remain even when more input would be accepted: ask until empty.
        if self._b.is_finished():
            return b""
        return bytes(self._b.process(b"", output_buffer_limit=limit))

    def finished(self) -> bool:
        return bool(self._b.is_finished())


def _decoder(encoding: str) -> _Decoder:
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return _Gzip(47)
    if encoding == "deflate":
        return _Gzip(15)
    if encoding == "br":
        return _Brotli()
    return _Identity()


class Response:
    """A streamed response: status, case-insensitive headers, decompressed ``chunks()``."""

    def __init__(
        self, raw: aiohttp.ClientResponse, request: Request, settings: HttpSettings
    ) -> None:
        self._raw = raw
        self._request = request
        self._settings = settings
        self.status = raw.status
        self.headers: CIMultiDictProxy[str] = raw.headers
        self.received = 0  # decompressed bytes so far

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, decompressed, as it arrives; raises on bombs, resets and truncation."""
        decoder = _decoder(self._raw.headers.get("Content-Encoding", ""))
        cap = self._settings.max_body_bytes
        with _translate(self._request.label):
            async for data in self._raw.content.iter_chunked(self._settings.chunk_size):
                out = decoder.feed(data, self._room(cap))
                while out:
                    self.received += len(out)
                    yield out
                    out = decoder.more(self._room(cap))
        if not decoder.finished():
            raise TruncatedBody("the compressed body ended early", request=self._request.label)

    def _room(self, cap: int) -> int:
        room = cap - self.received
        if room <= 0:
            raise BodyTooLarge(
                f"the decompressed body exceeds {cap} bytes", request=self._request.label
            )
        # Ask for at most one chunk beyond what is allowed, so a bomb is caught at the cap.
        return min(room + 1, self._settings.chunk_size * 16)

    async def read(self, limit: int | None = None) -> bytes:
        """The whole (small) body; at most ``limit`` bytes are kept."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                break
        body = b"".join(parts)
        return body if limit is None else body[:limit]


@contextmanager
def _translate(label: str) -> Iterator[None]:
    """aiohttp/OS/timeout exceptions → harvester's error tree (once, here)."""
    try:
        yield
    except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
        raise TimeoutError_(f"timed out ({type(exc).__name__})", request=label) from exc
    except (aiohttp.ClientConnectorError, ConnectionRefusedError) as exc:
        raise ConnectError(f"cannot connect: {exc.strerror or exc}", request=label) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, ConnectionError) as exc:
        raise TruncatedBody(
            f"the connection broke mid-body ({type(exc).__name__})", request=label
        ) from exc
    except aiohttp.ClientError as exc:
        raise TruncatedBody(f"transport error ({type(exc).__name__})", request=label) from exc
    except (zlib.error, brotli.error) as exc:
        raise TruncatedBody(f"the compressed body is corrupt ({exc})", request=label) from exc


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def raise_for_status(response: Response, request: Request, body: bytes = b"") -> None:
    """Map an error status to the error tree (2xx, 204 included, passes)."""
    status = response.status
    if status < 400:
        return
    detail = ""
    if body:
        try:
            data = orjson.loads(body)
            if isinstance(data, dict):
                detail = str(data.get("title") or data.get("message") or data.get("detail") or "")
        except orjson.JSONDecodeError:
            detail = body[:200].decode("utf-8", "replace").strip()
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        after = _retry_after(response.headers.get("Retry-After"), time.time())
        raise RateLimited(message, request=request.label, retry_after=after)
    if status == 401:
        raise Unauthorized(message, status=status, request=request.label)
    if status >= 500:
        raise ServerError(message, status=status, request=request.label)
    raise ClientError(message, status=status, request=request.label)


class HttpClient:
    """One API's connection pool; an async context manager (``aclose`` is idempotent)."""

    def __init__(self, settings: HttpSettings, *, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) base URL: {base_url!r}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ConfigError(f"plain http is allowed only to loopback, not {parts.hostname}")
        self._settings = settings
        self._base = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this HttpClient is closed; make a new one")
        if self._session is None:
            s = self._settings
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=s.concurrency, limit_per_host=s.concurrency),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=s.connect_timeout, sock_read=s.read_timeout
                ),
                auto_decompress=False,
                headers={"Accept-Encoding": s.accept_encoding, "User-Agent": s.user_agent},
            )
        return self._session

    @asynccontextmanager
    async def stream(self, request: Request) -> AsyncIterator[Response]:
        """Send ``request``; the response's body is read through ``chunks()`` inside the block."""
        session = self._open()
        body = orjson.dumps(request.json) if request.json is not None else None
        headers = dict(request.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that arrives
        # as the answer does, and a cancelled task that goes on can wait forever.
        with _translate(request.label):
            async with asyncio.timeout(self._settings.first_byte_timeout):
                raw = await session.request(
                    request.method, self._base + request.url, params=list(request.params),
                    data=body, headers=headers,
                )  # fmt: skip
        try:
            yield Response(raw, request, self._settings)
        except BaseException:
            raw.close()  # a half-read body: drop the connection rather than reuse it
            raise
        else:
            raw.release()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pool; safe to call twice."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def header_map(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with lower-case names (for code that must not depend on letter case)."""
    return {k.lower(): v for k, v in headers.items()}
