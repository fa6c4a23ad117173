"""The one seam to the network: aiohttp's client lives here and nowhere else in the harvester.

``HttpClient`` (one per API) streams responses: ``async with client.stream(request) as resp`` gives
a ``Response`` (``messages.py``, which also holds ``Request``; both re-exported here): the status,
case-insensitive headers and ``resp.chunks()``, the body decompressed chunk by chunk, by us, not
aiohttp, so a compression bomb stops at its cap. Every aiohttp, OS and timeout exception, while
sending or while the body streams, is translated here, once, into ``harvester.errors``; messages
carry the request's label, never headers or secrets. Plain ``http://`` is refused for anything
but loopback (where, with no proxy, no TLS context is built).

TLS is always verified (``tls.py``: the system trust store, ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``,
plus the section's ``ca_file``); a certificate that does not verify is a ``CertificateError``
naming the host, OpenSSL's reason and the ``ca_file`` key, never retried. The proxy is the
section's ``proxy`` key or the environment's (``proxies.py``); its credentials travel only in the
``Proxy-Authorization`` header, and errors name it as ``scheme://host:port``. Connections are kept
alive across requests; ``report`` counts the ones opened (the manifest's ``transport``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

import aiohttp
import orjson

from harvester.config import is_loopback
from harvester.engine.encoding import offer
from harvester.engine.http_settings import HttpSettings
from harvester.engine.messages import Client, Request, Response
from harvester.engine.statuses import problem_text, raise_for_status, retry_after
from harvester.engine.tls import client_context, verify_reason
from harvester.errors import (
    CertificateError,
    ConfigError,
    ConnectError,
    RequestTimeout,
    TruncatedBody,
)
from harvester.proxies import ProxyChoice, choose

__all__ = [
    "Client",
    "HttpClient",
    "HttpSettings",
    "Request",
    "Response",
    "problem_text",
    "raise_for_status",
    "retry_after",
]

log = logging.getLogger("harvester.http")


@dataclass(frozen=True, slots=True)
class _Route:
    """Where a client's connections go, for the errors that name them."""

    name: str
    host: str
    proxy: ProxyChoice | None

    def via(self) -> str:
        return f"proxy {self.proxy.proxy.url} (from {self.proxy.origin})" if self.proxy else ""


def _reason(exc: OSError) -> str:
    """``Connection refused`` rather than asyncio's ``Connect call failed ('127.0.0.1', 1)``."""
    if exc.errno:
        return os.strerror(exc.errno)
    return exc.strerror or type(exc).__name__


@contextmanager
def _translate(label: str, route: _Route | None = None) -> Iterator[None]:
    """aiohttp/OS/timeout exceptions → harvester's error tree (once, here)."""
    try:
        yield
    except aiohttp.ClientConnectorCertificateError as exc:
        section = f"{route.name}." if route and route.name else ""
        host = route.host if route else f"{exc.host}:{exc.port}"
        reason = verify_reason(exc.certificate_error)
        raise CertificateError(
            f"{section.rstrip('.') + ': ' if section else ''}{host}: {reason}; if a company CA "
            f"re-signs TLS on this network, add its PEM bundle as {section}ca_file (or set "
            f"SSL_CERT_FILE)",
            host=host,
            reason=reason,
        ) from None
    except aiohttp.ClientProxyConnectionError as exc:
        where = route.via() if route else "the proxy"
        raise ConnectError(
            f"cannot connect to {where}: {_reason(exc.os_error)}", request=label
        ) from None
    except aiohttp.ClientHttpProxyError as exc:
        where = route.via() if route else "the proxy"
        raise ConnectError(
            f"{where} refused the tunnel: HTTP {exc.status} {exc.message}", request=label
        ) from None
    except aiohttp.ClientConnectorSSLError as exc:
        host = route.host if route else f"{exc.host}:{exc.port}"
        raise ConnectError(
            f"TLS handshake with {host} failed: {verify_reason(exc.os_error)}", request=label
        ) from None
    except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
        raise RequestTimeout(f"timed out ({type(exc).__name__})", request=label) from exc
    except (aiohttp.ClientConnectorError, ConnectionRefusedError) as exc:
        target = route.host if route else ""
        reason = _reason(getattr(exc, "os_error", exc))
        raise ConnectError(
            f"cannot connect{' to ' + target if target else ''}: {reason}", request=label
        ) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, ConnectionError) as exc:
        raise TruncatedBody(
            f"the connection broke mid-body ({type(exc).__name__})", request=label
        ) from exc
    except aiohttp.ClientError as exc:
        raise TruncatedBody(f"transport error ({type(exc).__name__})", request=label) from exc


class _Chunks:
    """aiohttp's chunks of one response body, its transport errors translated (``_translate``)."""

    def __init__(self, chunks: AsyncIterator[bytes], label: str) -> None:
        self._chunks = chunks
        self._label = label

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        with _translate(self._label):
            return await anext(self._chunks)


def _body(content: aiohttp.StreamReader, label: str, size: int) -> AsyncIterator[bytes]:
    """The body on the wire, ``size`` bytes at most at a time (``Response``'s ``body``)."""
    return _Chunks(content.iter_chunked(size), label)


class HttpClient:
    """One API's connection pool; an async context manager (``aclose`` is idempotent).

    ``env`` (default: ``os.environ``) is where the proxy variables and ``SSL_CERT_FILE`` are
    read, once, here. ``report``, when given, is kept up to date with ``connections`` (opened so
    far), ``scheme``, ``proxy`` (its URL without credentials, or None), ``accept_encoding`` (the
    value offered) and ``accept_encoding_rule`` (why: ``encoding.offer``).
    """

    def __init__(
        self,
        settings: HttpSettings,
        *,
        base_url: str,
        env: Mapping[str, str] | None = None,
        report: dict[str, object] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) base URL: {base_url!r}")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ConfigError(f"plain http is allowed only to loopback, not {parts.hostname}")
        env = os.environ if env is None else env
        name = settings.name
        port = parts.port or (443 if parts.scheme == "https" else 80)
        proxy = choose(
            parts.scheme,
            parts.hostname,
            port,
            configured=settings.proxy,
            key=f"{name}.proxy" if name else "proxy",
            env=env,
        )
        # Plain http to loopback with no proxy speaks no TLS: no trust store (~30 ms of CPU).
        tls = parts.scheme == "https" or proxy is not None
        ca_key = f"{name}.ca_file" if name else "ca_file"
        self._ssl: ssl.SSLContext | bool = (
            client_context(settings.ca_file, key=ca_key, env=env) if tls else True
        )
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self._route = _Route(name, f"{host}:{port}", proxy)
        self._proxy_headers: dict[str, str] | None = None
        if proxy is not None and (auth := proxy.proxy.authorization()) is not None:
            self._proxy_headers = {"Proxy-Authorization": auth}
        self._settings = settings
        self._base = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self.report = report if report is not None else {}
        self._encoding, rule = offer(
            settings.accept_encoding, parts.hostname, proxied=proxy is not None
        )
        self.report.update(
            connections=0,
            scheme=parts.scheme,
            proxy=proxy.proxy.url if proxy else None,
            accept_encoding=self._encoding,
            accept_encoding_rule=rule,
        )

    @property
    def connections(self) -> int:
        """Connections opened so far (each one TCP connect, and TLS handshake for https)."""
        return int(str(self.report["connections"]))

    async def _opened(self, *_: object) -> None:
        self.report["connections"] = self.connections + 1
        log.debug(
            "%s: connection %d opened to %s",
            self._route.name or "http",
            self.connections,
            self._route.host,
        )

    def _open(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this HttpClient is closed; make a new one")
        if self._session is None:
            s = self._settings
            trace = aiohttp.TraceConfig()
            trace.on_connection_create_end.append(self._opened)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=s.concurrency, limit_per_host=s.concurrency, ssl=self._ssl
                ),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=s.connect_timeout, sock_read=s.read_timeout
                ),
                auto_decompress=False,
                # Reads of up to chunk_size need a buffer as large (aiohttp's default: 64 KB).
                read_bufsize=max(s.chunk_size, 1 << 16),
                headers={"Accept-Encoding": self._encoding, "User-Agent": s.user_agent},
                trust_env=False,  # the proxy is chosen here (proxies.py), not by aiohttp
                trace_configs=[trace],
            )
        return self._session

    async def check(self) -> None:
        """One ``HEAD`` of the base URL (its status ignored): a certificate that does not verify
        raises ``CertificateError`` now, before a run writes anything; the connection stays in
        the pool. Other failures raise as they would for any request."""
        async with self.stream(Request(method="HEAD", url="/", label="TLS check")):
            pass

    @asynccontextmanager
    async def stream(self, request: Request) -> AsyncIterator[Response]:
        """Send ``request``; the response's body is read through ``chunks()`` inside the block."""
        session = self._open()
        body = orjson.dumps(request.json) if request.json is not None else None
        headers = dict(request.headers)
        if self._proxy_headers is not None and self._base.startswith("http:"):
            headers.update(self._proxy_headers)  # plain http: the proxy reads the request itself
        if body is not None:
            headers["Content-Type"] = "application/json"
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that arrives
        # as the answer does, and a cancelled task that goes on can wait forever.
        proxy = self._route.proxy
        with _translate(request.label, self._route):
            async with asyncio.timeout(self._settings.first_byte_timeout):
                raw = await session.request(
                    request.method,
                    self._base + request.url,
                    params=list(request.params),
                    data=body,
                    headers=headers,
                    proxy=proxy.proxy.url if proxy else None,
                    proxy_headers=self._proxy_headers,
                )
        if proxy is not None and raw.status == 407:  # plain http through the proxy: its answer
            raw.close()
            raise ConnectError(
                f"{self._route.via()} refused the request: HTTP 407 {raw.reason or ''}".rstrip(),
                request=request.label,
            )
        try:
            wire = partial(_body, raw.content, request.label)
            yield Response(raw.status, raw.headers, wire, request, self._settings)
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
