"""A hostile front for the NOBB simulator: forwards every request, spoils the ones a test picks.

``Front`` is a tiny aiohttp server on 127.0.0.1. Each request is forwarded to a real
``Simulator`` (same method, path, query and Authorization; identity encoding) and the answer
comes back with the headers that matter (``x-totalHits``, the tokens, ``x-ratelimit-*``),
unless ``spoil(request, upstream)`` returns another answer. The harvester's real ``NobbSource``
talks to the front over a real socket, so nothing of its HTTP layer is mocked.

The harvester's clock for these tests is ``tests.clocks.JumpClock``: real time plus every sleep,
skipped, so backoff and rate-limit waits take no wall time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from harvester.sim.server import Simulator

__all__ = ["Front", "Upstream", "first_partition"]

_PASS = ("content-type", "x-totalhits", "x-forwardtoken", "x-backwardtoken")


def _kept(name: str) -> bool:
    return name.lower() in _PASS or name.lower().startswith("x-ratelimit-")


@dataclass(slots=True)
class Upstream:
    """The simulator's answer to a forwarded request (body decompressed)."""

    status: int
    headers: dict[str, str]
    body: bytes


Spoiler = Callable[[web.Request, Upstream], Awaitable[web.StreamResponse | None]]


def first_partition(request: web.Request, direction: str | None = None) -> bool:
    """True for a walk request of the first partition (open below: ``to`` but no ``from``)."""
    q = request.query
    if "sortOrder" not in q or "from" in q or "to" not in q:
        return False
    return direction is None or q["sortOrder"] == direction


class Front:
    """Forwards to ``sim``; ``spoil`` may replace any answer (module docstring)."""

    def __init__(self, sim: Simulator, spoil: Spoiler | None = None) -> None:
        self.sim = sim
        self.spoil = spoil
        self.spoiled: list[str] = []  # path and query of every spoiled request
        self.url = ""
        self._http: aiohttp.ClientSession | None = None
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)

    async def __aenter__(self) -> Front:
        self._http = aiohttp.ClientSession(auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
        assert self._http is not None
        await self._http.close()

    async def fetch(self, request: web.Request, path_qs: str | None = None) -> Upstream:
        """The simulator's answer to ``request`` (or to the same request at ``path_qs``)."""
        assert self._http is not None
        headers = {"Accept-Encoding": "identity"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        async with self._http.request(
            request.method, self.sim.url + (path_qs or request.path_qs), headers=headers,
            data=await request.read() or None,
        ) as r:  # fmt: skip
            kept = {k: v for k, v in r.headers.items() if _kept(k)}
            return Upstream(r.status, kept, await r.read())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        up = await self.fetch(request)
        if self.spoil is not None:
            bad = await self.spoil(request, up)
            if bad is not None:
                self.spoiled.append(request.path_qs)
                return bad
        return web.Response(status=up.status, body=up.body, headers=up.headers)
