"""The DBK session: a DynamicWeb 10 JWT, renewed before it runs out, re-made once after a 401.

- ``POST /dwapi/users/authenticate`` with ``{"username", "password"}`` answers ``{"token"}``.
  The token's ``exp`` claim is read without verifying the signature (the server checks it; the
  client only needs to know when to renew). A token without a readable ``exp`` is assumed to
  live DynamicWeb's default 1800 s.
- ``bearer()`` returns a token valid for at least ``margin`` more seconds: when the current one
  is closer to its end, ``GET /dwapi/users/authenticate/refresh`` renews it, and if the refresh
  is refused (400, 401, 403 or 404), the session authenticates again, and does so directly,
  without asking the refresh endpoint, for the rest of the run. ``margin`` is
  ``token_refresh_margin`` bounded by a quarter of the token's life as its claims show it
  (``exp`` − ``iat``, else ``exp`` − now): a 60 s margin on a token living 10 s would renew
  before every request.
- After a 401 on an export, the caller asks ``after_401(token)``: the first caller for that
  token authenticates again (concurrent windows share one new token); if that token is refused
  too, ``AuthError`` stops the source (exit 3) naming the config keys, never their values.

Only one renewal runs at a time (an ``asyncio.Lock``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging

import orjson

from harvester.config import DbkConfig
from harvester.engine.clock import Clock
from harvester.engine.messages import Client, Request
from harvester.engine.retry import RetryPolicy, call_with_retries
from harvester.engine.statuses import raise_for_status
from harvester.errors import AuthError, FetchError, StatusError

__all__ = ["AUTH", "REFRESH", "DbkSession", "jwt_expiry", "jwt_times"]

AUTH = "/dwapi/users/authenticate"
REFRESH = "/dwapi/users/authenticate/refresh"
DEFAULT_LIFETIME = 1800.0
#: The refresh margin is at most this share of a token's life.
LIFE_SHARE = 0.25
log = logging.getLogger("harvester.dbk")


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (UNIX seconds) of a JWT, read without verification; None if absent."""
    return jwt_times(token)[0]


def jwt_times(token: str) -> tuple[float | None, float | None]:
    """The ``exp`` and ``iat`` claims (UNIX seconds) of a JWT, unverified; None where absent."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, orjson.JSONDecodeError):
        return None, None
    if not isinstance(claims, dict):
        return None, None
    exp, iat = claims.get("exp"), claims.get("iat")
    return (
        float(exp) if isinstance(exp, int | float) else None,
        float(iat) if isinstance(iat, int | float) else None,
    )


class DbkSession:
    """Bearer tokens for the DBK export (module docstring)."""

    def __init__(self, cfg: DbkConfig, http: Client, clock: Clock, *, policy: RetryPolicy) -> None:
        self.cfg = cfg
        self.http = http
        self.clock = clock
        self.policy = policy
        self.margin = cfg.token_refresh_margin
        self.token: str | None = None
        self.expires = 0.0
        self.authentications = 0
        self.refreshes = 0
        self._lock = asyncio.Lock()
        self._refused: str | None = None  # a token a fresh authentication gave and a 401 refused
        self.refresh_refused = False  # the refresh endpoint refused once: log in directly

    async def bearer(self) -> str:
        """A token that stays valid for at least ``margin`` seconds."""
        async with self._lock:
            if self.token is None:
                await self._authenticate()
            elif self.clock.time() >= self.expires - self.margin:
                if self.refresh_refused:
                    await self._authenticate()
                else:
                    await self._refresh()
            assert self.token is not None
            return self.token

    async def after_401(self, token: str) -> None:
        """An export refused ``token``: authenticate again once; a second refusal is fatal."""
        async with self._lock:
            if token != self.token:
                return  # another window already replaced it
            if self._refused == token:
                raise AuthError(
                    "dbk: the export refused a fresh token for dbk.username (HTTP 401): the "
                    "account may lack export rights, or dbk.publisher is not its own"
                )
            await self._authenticate()
            self._refused = self.token

    def confirm(self, token: str) -> None:
        """An export accepted ``token``: a later 401 on it may be retried once again."""
        if self._refused == token:
            self._refused = None

    def _set(self, token: str) -> None:
        now = self.clock.time()
        exp, issued = jwt_times(token)
        self.token = token
        self.expires = exp if exp is not None else now + DEFAULT_LIFETIME
        life = self.expires - (issued if issued is not None else now)
        self.margin = min(self.cfg.token_refresh_margin, max(0.0, life) * LIFE_SHARE)

    async def _authenticate(self) -> None:
        body = {"username": self.cfg.username.reveal(), "password": self.cfg.password.reveal()}
        request = Request(method="POST", url=AUTH, json=body, label=f"dbk POST {AUTH}")
        try:
            token = await self._token(request)
        except StatusError as exc:
            if exc.status in (400, 401, 403, 404):
                raise AuthError(
                    f"dbk: the server refused the credentials from dbk.username / dbk.password "
                    f"(HTTP {exc.status} at {AUTH})"
                ) from None
            raise
        self.authentications += 1
        self._set(token)
        log.info("dbk: authenticated; token valid until %.0f", self.expires)

    async def _refresh(self) -> None:
        assert self.token is not None
        request = Request(
            method="GET",
            url=REFRESH,
            headers=(("Authorization", f"Bearer {self.token}"),),
            label=f"dbk GET {REFRESH}",
        )
        try:
            token = await self._token(request)
        except StatusError as exc:
            if exc.status not in (400, 401, 403, 404):
                raise
            log.info(
                "dbk: refresh refused (HTTP %d); logging in again, and directly from now on",
                exc.status,
            )
            self.refresh_refused = True
            await self._authenticate()
            return
        self.refreshes += 1
        self._set(token)

    async def _token(self, request: Request) -> str:
        async def attempt() -> str:
            async with self.http.stream(request) as resp:
                body = await resp.read(1 << 16)
                raise_for_status(resp, request, body)
            try:
                token = orjson.loads(body)["token"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                token = None
            if not isinstance(token, str) or token.count(".") != 2:
                raise FetchError("the answer holds no JWT under 'token'", request=request.label)
            return token

        return await call_with_retries(attempt, policy=self.policy, clock=self.clock)
