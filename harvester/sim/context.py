"""What the simulated APIs share: one ``SimContext`` per simulator.

``SimContext`` holds the settings, the wall clock (injectable, so tests move time without sleeping),
both catalogues, one rate limit per API (a fixed or a sliding window), the fault plan and counters
(``stats``) that tests and benchmarks read. The rate limit's window kind, header family, reset style
and clock skew come from the settings (``sim/ratelimit.py``). The server (``server.py``) builds it;
the API modules (``nobb.py``, ``dbk.py``) take it, so none of them imports the server.
"""

from __future__ import annotations

import base64
import binascii
import collections
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from harvester.sim.books import BookCatalogue
from harvester.sim.catalogue import NobbCatalogue
from harvester.sim.faults import FaultPlan
from harvester.sim.ratelimit import Decision, RateWindow
from harvester.sim.settings import SimSettings

__all__ = ["SimContext"]


@dataclass(slots=True, kw_only=True)
class SimContext:
    """State shared by the simulated APIs (see the module docstring)."""

    settings: SimSettings
    clock: Callable[[], float]
    nobb: NobbCatalogue
    books: BookCatalogue
    faults: FaultPlan
    limits: dict[str, RateWindow]
    nobb_headers: tuple[str, str, str]
    stats: collections.Counter[str] = field(default_factory=collections.Counter)
    nobb_generation: int = 0

    def basic_user(self, request: web.Request) -> str | None:
        """The user of a valid HTTP Basic Authorization header, else None."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if (user, password) != (self.settings.username, self.settings.password):
            return None
        return user

    def rate_check(self, api: str, client: str) -> Decision:
        """Count one request against ``api``'s window for ``client``."""
        limit = self.limits[api]
        if self.faults.limit_dropped() and self.settings.rate_limit > 1:
            limit.limit = max(1, self.settings.rate_limit // 2)
        decision = limit.check(client)
        self.stats[f"{api}_requests"] += 1
        if not decision.allowed:
            self.stats[f"{api}_429"] += 1
        return decision
