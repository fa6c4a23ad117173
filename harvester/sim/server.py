"""The simulator: one aiohttp server on loopback serving both APIs at their real paths.

>>> # async with Simulator(SimSettings(nobb_items=1000)) as sim:
>>> #     print(sim.url)            # http://127.0.0.1:PORT, base URL for both sources

With an ``ssl_context`` (or ``tls_cert`` and ``tls_key``, PEM files) it serves HTTPS instead, and
``url`` is ``https://HOST:PORT``; keep-alive connections are reused across requests either way.

The server builds the ``SimContext`` (``sim/context.py``) that the API modules share and adds
their routes; the context lives in its own module so that they need not import this one.
"""

from __future__ import annotations

import collections
import ssl
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from aiohttp import web

from harvester.sim import dbk, nobb
from harvester.sim.books import BookCatalogue
from harvester.sim.catalogue import NobbCatalogue
from harvester.sim.context import SimContext
from harvester.sim.faults import FaultPlan
from harvester.sim.ratelimit import RateWindow
from harvester.sim.settings import SimSettings

__all__ = ["Simulator", "server_context"]

HEADER_STYLES = {
    "camel": ("x-totalHits", "x-forwardToken", "x-backwardToken"),
    "kebab": ("x-total-hits", "x-forward-token", "x-backward-token"),
}


class Simulator:
    """Both APIs on ``settings.host:settings.port``; an async context manager.

    ``clock`` is the wall clock (UNIX seconds) used for token ages, JWT expiry and rate windows.
    ``nobb_header_style`` picks the docs' ``camel`` (x-totalHits) or ``kebab`` (x-total-hits)
    spelling of the paging headers (None: ``settings.readings.nobb_header_style``).
    ``ssl_context``, or the PEM files ``tls_cert`` and ``tls_key``, make it serve HTTPS (TLS 1.2
    or newer).
    """

    def __init__(
        self,
        settings: SimSettings,
        *,
        clock: Callable[[], float] | None = None,
        nobb_header_style: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
    ) -> None:
        self.settings = settings
        if ssl_context is None and tls_cert is not None:
            ssl_context = server_context(tls_cert, tls_key)
        elif tls_key is not None and ssl_context is None:
            raise ValueError("tls_key needs tls_cert")
        self.ssl_context = ssl_context
        clock = clock or time.time
        self.ctx = SimContext(
            settings=settings,
            clock=clock,
            nobb=NobbCatalogue(settings.nobb_items, settings.seed, now=settings.now),
            books=BookCatalogue(
                settings.dbk_products,
                settings.seed,
                cap=settings.dbk_max_products,
                bulk_second=settings.dbk_bulk_second,
                now=settings.now,
            ),
            faults=FaultPlan(profile=settings.faults, seed=settings.seed),
            limits={
                api: RateWindow(
                    settings.rate_limit,
                    settings.rate_window,
                    clock,
                    sliding=settings.rate_sliding,
                    headers=settings.rate_headers,
                    reset_style=settings.reset_style,
                    skew=settings.clock_skew,
                    hidden=settings.rate_hidden,
                    retry_after=settings.retry_after,
                    change_after=settings.rate_change_after,
                    change_to=settings.rate_change_to,
                )
                for api in ("nobb", "dbk")
            },
            nobb_headers=HEADER_STYLES[nobb_header_style or settings.readings.nobb_header_style],
        )
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.add_routes(nobb.routes(self.ctx))
        app.add_routes(dbk.routes(self.ctx))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._site: web.TCPSite | None = None
        self.port = 0
        self._closed = False

    @property
    def url(self) -> str:
        host = self.settings.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def stats(self) -> collections.Counter[str]:
        return self.ctx.stats

    def nobb_keys(self) -> list[int]:
        """Every NOBB number in the catalogue, ascending: what a full dump must produce."""
        return list(self.ctx.nobb.keys)

    def vanish_nobb(self, nobb_number: int) -> None:
        """Remove an item mid-run or between runs, its date unchanged (open-points.md: a
        removed item may vanish rather than expire); no request finds it afterwards."""
        self.ctx.nobb.vanish(nobb_number)
        self.ctx.nobb_generation += 1

    def touch_nobb(self, nobb_number: int, day: date) -> None:
        """Change an item's last-modified date mid-run."""
        self.ctx.nobb.touch(nobb_number, day)
        self.ctx.nobb_generation += 1

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start listening; ``url`` is valid afterwards."""
        await self._runner.setup()
        self._site = web.TCPSite(
            self._runner, self.settings.host, self.settings.port, ssl_context=self.ssl_context
        )
        await self._site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1])

    async def aclose(self) -> None:
        """Stop serving; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self._runner.cleanup()


def server_context(cert: str | Path, key: str | Path | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context from PEM files (``key`` None: the key is in ``cert``).

    Raises ValueError naming the file when it cannot be loaded.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert), None if key is None else str(key))
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ValueError(f"cannot load the TLS certificate {cert} / key {key}: {reason}") from None
    return context
