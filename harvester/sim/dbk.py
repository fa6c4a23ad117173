"""The simulated DBK / Bogportalen ONIX 3.1 export, with DynamicWeb 10 authentication.

- ``POST /dwapi/users/authenticate`` ``{"username", "password"}`` (or ``GET`` with ``userName``
  and ``password`` query parameters; optional ``expirationInSeconds``) answers
  ``{"token": <JWT HS256>}`` with DynamicWeb's claims and a default lifetime of 1800 s; wrong
  credentials answer 404 "Username or password is not valid", as DynamicWeb does.
- ``GET /dwapi/users/authenticate/refresh`` with the Bearer token answers a new token; an expired
  or invalid one answers 403 "Token could not be authorized or Token expired".
- ``GET`` (query parameters) and ``POST`` (JSON body) ``/onix/document/export/v3.1`` with
  ``productIds``, ``publisher``, ``updatedFrom``, ``updatedTo``. ``updatedFrom`` is inclusive and
  ``updatedTo`` exclusive, on each product's update time (its ``datestamp``), unless
  ``dbk_from_exclusive`` / ``dbk_to_inclusive`` pick another reading of the docs. Times may be
  ISO 8601 basic (``20250204T0930-0400``, ``20250204T093000Z``, ``20250204``) or extended
  (``2025-02-04T09:30:00+00:00``); no zone means UTC. Products come in update-time order, at most
  ``dbk_max_products`` per answer: the rest is silently cut off. Nothing matching: 204.
- A missing, expired or invalid token: 401 ``application/problem+json`` (type, title, status,
  detail, traceId). A ``publisher`` that is not one of the catalogue's publishers is not the
  caller's: 401 with the documented title "Publisher Id in request does not match current logged
  in publisher". The simulated account may export every publisher of the catalogue.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import orjson
from aiohttp import web

from harvester.sim.books import PUBLISHERS
from harvester.sim.context import SimContext
from harvester.sim.dbk_filters import BadRequest, export_filters, parse_time
from harvester.sim.faults import Fault, fails_always
from harvester.sim.wire import send

__all__ = ["parse_time", "routes"]

AUTH = "/dwapi/users/authenticate"
REFRESH = "/dwapi/users/authenticate/refresh"
EXPORT = "/onix/document/export/v3.1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def routes(ctx: SimContext) -> list[web.RouteDef]:
    """The DBK routes, bound to the simulator's shared context."""
    api = DbkApi(ctx)
    return [
        web.post(AUTH, api.authenticate),
        web.get(AUTH, api.authenticate),
        web.get(REFRESH, api.refresh),
        web.get(EXPORT, api.export),
        web.post(EXPORT, api.export),
    ]


def problem(status: int, title: str, detail: str, trace: str) -> web.Response:
    """An RFC 9457 problem+json answer as ASP.NET Core writes it."""
    kind = {401: "15.5.2", 400: "15.5.1", 404: "15.5.5", 413: "15.5.14"}.get(status, "15.6.1")
    body = {
        "type": f"https://tools.ietf.org/html/rfc9110#section-{kind}",
        "title": title,
        "status": status,
        "detail": detail,
        "traceId": trace,
    }
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/problem+json"
    )


class DbkApi:
    """Handlers over the shared book catalogue."""

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self._key = hashlib.sha256(f"dbk-sim-{ctx.settings.seed}".encode()).digest()
        self._messages = 0
        self._calls = 0  # shuffled answers so far (readings.dbk_shuffle)

    def _lifetime(self, request: web.Request) -> int:
        """``expirationInSeconds`` if asked, else the site's token life."""
        asked = request.query.get("expirationInSeconds", "")
        if asked.isdigit() and int(asked) > 0:
            return int(asked)
        return self.ctx.settings.readings.dbk_token_life

    def _key_now(self) -> bytes:
        """The signing key in force: the seed's, or with ``dbk_rotate_key`` one per period."""
        every = self.ctx.settings.readings.dbk_rotate_key
        if not every:
            return self._key
        period = int(self.ctx.clock() // every)
        return hashlib.sha256(self._key + period.to_bytes(8, "big", signed=True)).digest()

    def _trace(self) -> str:
        self.ctx.stats["dbk_traces"] += 1
        n = self.ctx.stats["dbk_traces"]
        digest = hashlib.sha256(f"{self.ctx.settings.seed}|{n}".encode()).hexdigest()
        return f"00-{digest[:32]}-{digest[32:48]}-00"

    def make_token(self, lifetime: int) -> str:
        now = int(self.ctx.clock())
        header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
        claims = {
            "nameid": "1",
            "nbf": now,
            "exp": now + lifetime,
            "iat": now,
            "iss": "Dynamicweb A/S",
            "aud": "WebAPI",
        }
        payload = _b64(orjson.dumps(claims))
        sig = hmac.new(self._key_now(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(sig)}"

    def _valid(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        parts = auth[7:].split(".")
        if len(parts) != 3:
            return False
        expected = hmac.new(
            self._key_now(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256
        ).digest()
        if not hmac.compare_digest(_b64(expected), parts[2]):
            return False
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return bool(claims.get("exp", 0) > self.ctx.clock())

    async def authenticate(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                body = orjson.loads(await request.read())
                user, password = str(body["username"]), str(body["password"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return web.json_response(
                    {"message": "username and password are required"}, status=400
                )
        else:
            user = request.query.get("userName", "")
            password = request.query.get("password", "")
        if (user, password) != (self.ctx.settings.username, self.ctx.settings.password):
            return web.json_response({"message": "Username or password is not valid"}, status=404)
        lifetime = self._lifetime(request)
        self.ctx.stats["dbk_authentications"] += 1
        return web.json_response({"token": self.make_token(lifetime)})

    async def refresh(self, request: web.Request) -> web.Response:
        self.ctx.stats["dbk_refresh_calls"] += 1
        refuses = self.ctx.settings.readings.dbk_refresh_refuses
        if refuses or not self._valid(request):
            return web.json_response(
                {"message": "Token could not be authorized or Token expired"}, status=refuses or 403
            )
        lifetime = self._lifetime(request)
        self.ctx.stats["dbk_refreshes"] += 1
        return web.json_response({"token": self.make_token(lifetime)})

    async def export(self, request: web.Request) -> web.StreamResponse:
        """The export: refused (401, 429, a fault, 400, 413), empty (204) or an ONIX message."""
        ctx = self.ctx
        if not self._valid(request):
            return problem(401, "Unauthorized", "A valid bearer token is required", self._trace())
        decision = ctx.rate_check("dbk", "user-1")
        headers = _dbk_case(decision.headers)
        if not decision.allowed:
            return self._problem(429, "Too Many Requests", "Rate limit exceeded", headers)
        raw = await request.read() if request.method == "POST" else b""
        fault = ctx.faults.decide(f"{request.method} {request.path_qs} {raw!r}")
        if fails_always(ctx.settings.fail_matching, request.path_qs, raw):
            ctx.stats["permanent_faults"] += 1
            fault = "error500"
        if fault in ("error500", "throttle"):
            status = 500 if fault == "error500" else 429
            title = "Server error" if status == 500 else "Too Many Requests"
            return self._problem(status, title, "simulated fault", headers)
        try:
            window = self._window(request, raw)
        except BadRequest as exc:
            return self._problem(400, "Bad Request", str(exc), headers)
        if isinstance(window, web.Response):
            window.headers.update(headers)
            return window
        sent, positions = window
        readings = ctx.settings.readings
        if not positions and not readings.dbk_empty_200:
            return web.Response(status=204, headers=headers)
        cap = ctx.settings.dbk_max_products
        if len(positions) > cap and readings.dbk_cap_answer in ("413", "400"):
            ctx.stats["dbk_refused_too_many"] += 1
            resp = _too_many(int(readings.dbk_cap_answer), cap, self._trace())
            resp.headers.update(headers)
            return resp
        return await self._message(request, self._cut(positions), sent, headers, fault)

    def _problem(
        self, status: int, title: str, detail: str, headers: dict[str, str]
    ) -> web.Response:
        """``problem`` with a new trace id and the rate-limit headers."""
        resp = problem(status, title, detail, self._trace())
        resp.headers.update(headers)
        return resp

    def _window(self, request: web.Request, raw: bytes) -> tuple[int, list[int]] | web.Response:
        """(sent, positions) the filters select, or the 401 for a publisher not the caller's."""
        ctx = self.ctx
        params = export_filters(
            request.query, raw, strict=ctx.settings.readings.dbk_basic_time_only
        )
        start, end, publisher, isbns = params
        # The other readings of "updated after" / "before" (open-points.md), on whole seconds.
        if start is not None and ctx.settings.dbk_from_exclusive:
            start += 1
        if end is not None and ctx.settings.dbk_to_inclusive:
            end += 1
        if publisher is not None and publisher not in PUBLISHERS:
            return problem(
                401,
                "Publisher Id in request does not match current logged in publisher",
                "To request an onix output please request the same Publisher ID as the currently "
                "logged in publisher",
                self._trace(),
            )
        sent = int(ctx.clock())  # read before the snapshot below, as one consistent moment
        return sent, ctx.books.window(start, end, publisher=publisher, isbns=isbns)

    def _cut(self, positions: list[int]) -> list[int]:
        """The products one answer carries: cut to the cap (unless none), shuffled if asked."""
        readings = self.ctx.settings.readings
        if readings.dbk_cap_answer != "none":
            positions = positions[: self.ctx.settings.dbk_max_products]
        if readings.dbk_shuffle:
            self._calls += 1
            random.Random(f"{self.ctx.settings.seed}|{self._calls}").shuffle(positions)
        return positions

    async def _message(
        self,
        request: web.Request,
        positions: list[int],
        sent: int,
        headers: dict[str, str],
        fault: Fault,
    ) -> web.StreamResponse:
        """The ONIX message of ``positions``, numbered, streamed as the readings ask."""
        ctx = self.ctx
        readings = ctx.settings.readings
        self._messages += 1
        ctx.stats["dbk_documents"] += 1
        return await send(
            request,
            ctx.books.message(
                positions,
                sent=sent,
                number=self._messages,
                release=readings.dbk_onix,
                datestamps=readings.dbk_datestamps,
            ),
            content_type="application/xml; charset=utf-8",
            headers=headers,
            latency=ctx.settings.latency_ms / 1000,
            fault=fault,
            encoding=readings.encoding,
        )


def _too_many(status: int, cap: int, trace: str) -> web.Response:
    """A window over the cap refused: 413 as ASP.NET writes it, or 400 stating the cap."""
    if status == 413:
        return problem(
            413,
            "Content Too Large",
            f"The export holds more than {cap} products: try with a smaller window",
            trace,
        )
    return problem(
        400,
        f"Too many products: the export is limited to {cap} products per request",
        "Narrow updatedFrom / updatedTo",
        trace,
    )


def _dbk_case(headers: dict[str, str]) -> dict[str, str]:
    """The rate-limit headers in the letter case the DBK page shows (X-RateLimit-*)."""
    return {
        k.replace("x-ratelimit", "X-RateLimit")
        .replace("-limit", "-Limit")
        .replace("-remaining", "-Remaining")
        .replace("-reset", "-Reset"): v
        for k, v in headers.items()
    }
