"""An HTTP exchange as the harvester sees it: the ``Request``, the streamed ``Response``, and
``Client``, what sends one and gives back the other.

``Response`` decompresses its body itself, chunk by chunk (``decoders.py``), so a compression
bomb stops at ``max_body_bytes`` without ever holding more than about one chunk beyond the cap; a
compressed stream that ends before its end marker, or is corrupt, is a ``TruncatedBody``. It
reads the body as it arrives on the wire through a callable: ``HttpClient.stream`` (``http.py``,
the only aiohttp client user, where the transport's errors are translated) gives the socket's, a
test literal bytes. Nothing here imports aiohttp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDictProxy

from harvester.engine.decoders import CORRUPT, decoder_for
from harvester.engine.http_settings import HttpSettings
from harvester.errors import BodyTooLarge, TruncatedBody

__all__ = ["Client", "Request", "Response"]


#: The most decompressed bytes one ``chunks()`` step gives (a NOBB page splits fastest in
#: pieces of 64 KB to 1 MB: larger ones fall out of the CPU's caches).
_INFLATE_STEP = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One request. ``label`` names it in errors and logs; ``headers`` never appear there."""

    method: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    json: object = None
    headers: tuple[tuple[str, str], ...] = ()
    label: str = ""


class Response:
    """A streamed response: status, case-insensitive headers, decompressed ``chunks()``.

    ``body`` gives the body as it arrives on the wire (still compressed), ``settings.chunk_size``
    bytes at most at a time: ``HttpClient.stream`` reads the socket; a test may give literal bytes.
    """

    def __init__(
        self,
        status: int,
        headers: CIMultiDictProxy[str],
        body: Callable[[int], AsyncIterator[bytes]],
        request: Request,
        settings: HttpSettings,
    ) -> None:
        self._body = body
        self._request = request
        self._settings = settings
        self.status = status
        self.headers = headers
        self.received = 0  # decompressed bytes so far

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, decompressed, as it arrives; raises on bombs, resets and truncation."""
        decoder = decoder_for(self.headers.get("Content-Encoding", ""))
        cap = self._settings.max_body_bytes
        try:
            async for data in self._body(self._settings.chunk_size):
                out = decoder.feed(data, self._room(cap))
                while out:
                    self.received += len(out)
                    yield out
                    out = decoder.more(self._room(cap))
        except CORRUPT as exc:
            raise TruncatedBody(
                f"the compressed body is corrupt ({exc})", request=self._request.label
            ) from exc
        if not decoder.finished():
            raise TruncatedBody("the compressed body ended early", request=self._request.label)

    def _room(self, cap: int) -> int:
        room = cap - self.received
        if room <= 0:
            raise BodyTooLarge(
                f"the decompressed body exceeds {cap} bytes", request=self._request.label
            )
        # Ask for at most one chunk beyond what is allowed, so a bomb is caught at the cap.
        return min(room + 1, _INFLATE_STEP)

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


class Client(Protocol):
    """What requests are sent through: ``HttpClient``, or a test's literal answers."""

    def stream(self, request: Request) -> AbstractAsyncContextManager[Response]:
        """Send ``request``; the response's body is read through ``chunks()`` inside the block."""
        ...
