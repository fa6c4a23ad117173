"""``harvester probe [nobb] [dbk] --config FILE [--json]``: what an API's latency and limit are.

It automates ``docs/tuning.md`` §1 with at most three requests per source, all through the
source's own limiter (``rate_limit`` as configured), so the probe itself never outruns a limit:

- NOBB: three ``GET /api/v2/items?pageSize=1``. When the first answer's reset is at most
  ``JUMP_WAIT`` seconds away, the second goes half-way to it and the third just after it: the
  reset's jump shows the window's length, and what the third answer still counts tells the
  kind (a fixed window refilled: only the third; a sliding one let the first go alone: the
  second and the third, and its reset moved by half a window). Otherwise they go back to back.
- DBK: one authentication, then two exports of an empty window (``2099-01-01``, 1 s), back to
  back: two requests cannot tell a fixed window from a sliding one, so its kind is assumed.

Printed per source: latency (``first_byte``: the time to the answer's headers on a warm
connection; ``connect``: what the first request took longer, the connection's set-up), the
inferred policy (limit, window and whether it was stated, measured from a reset's jump or only
bounded below by the longest time-to-reset seen, header family, reset style, window kind and
whether the answers showed it or it is assumed, clock skew), the NOBB catalogue size
(``x-totalHits``) and the ``harvester bench --sweep`` command that runs the simulator with that
limit, latency and header style. ``--json`` prints the same as one JSON object keyed by source.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import replace
from typing import Any

import orjson

from harvester.config import Config, DbkConfig, NobbConfig
from harvester.engine.clock import Clock, SystemClock
from harvester.engine.http import HttpClient, HttpSettings, Request, raise_for_status
from harvester.engine.limiter import RateLimiter
from harvester.engine.retry import RetryPolicy
from harvester.errors import AuthError, ConfigError
from harvester.plan.page_headers import TOTAL
from harvester.sources.endpoint import Answer, Endpoint, http_settings

__all__ = ["JUMP_WAIT", "probe", "render", "sweep_command"]

log = logging.getLogger("harvester.probe")

#: The third NOBB request waits for the window's reset if it comes within this many seconds.
JUMP_WAIT = 15.0


def _settings(cfg: NobbConfig | DbkConfig) -> HttpSettings:
    # The run's own settings (ca_file, proxy, timeouts), two connections: what a dump would see.
    name = "nobb" if isinstance(cfg, NobbConfig) else "dbk"
    return replace(http_settings(cfg, name), concurrency=2)


def _endpoint(cfg: NobbConfig | DbkConfig, http: HttpClient, clock: Clock) -> Endpoint:
    """One attempt per request and no request lines: a probe reports what it measured."""
    name = "nobb" if isinstance(cfg, NobbConfig) else "dbk"
    limiter = RateLimiter.from_setting(
        cfg.rate_limit, clock=clock, name=name, key=f"{name}.rate_limit"
    )
    return Endpoint(
        source=name,
        http=http,
        limiter=limiter,
        clock=clock,
        policy=RetryPolicy(attempts=1),
        log=log,
        log_requests=False,
    )


async def _timed(endpoint: Endpoint, request: Request) -> tuple[float, int, dict[str, str]]:
    """One request under the limiter: seconds to its headers, status, headers (a 429 too)."""

    async def prepare() -> Request:
        return request

    async def read(answer: Answer) -> tuple[float, int, dict[str, str]]:
        resp = answer.response
        headers = dict(resp.headers)
        body = await resp.read(2048)
        if resp.status >= 400 and resp.status != 429:
            raise_for_status(resp, request, body)
        return answer.first_byte, resp.status, headers

    return await endpoint.send(prepare, read, progress=None, what=request.label)


async def _nobb(cfg: NobbConfig, clock: Clock) -> dict[str, Any]:
    from harvester.sources.nobb_fetch import PATH

    raw = f"{cfg.username.reveal()}:{cfg.password.reveal()}".encode()
    auth = (("Authorization", "Basic " + base64.b64encode(raw).decode()),)
    times: list[float] = []
    hits: int | None = None
    async with HttpClient(_settings(cfg), base_url=cfg.base_url) as http:
        endpoint = _endpoint(cfg, http, clock)
        limiter = endpoint.limiter
        reset_at: float | None = None
        for n in range(3):
            if n == 1:
                hi = limiter.policy.hi
                until = hi - clock.monotonic() if hi is not None else None
                if until is not None and 0 < until <= JUMP_WAIT:
                    reset_at = hi
                    await clock.sleep(until / 2)
            elif n == 2 and reset_at is not None:
                # The window's end as the second answer narrowed it (never before the first's).
                end = max(reset_at, limiter.policy.hi or reset_at)
                await clock.sleep(max(0.0, end - clock.monotonic()) + 0.05)
            request = Request(
                method="GET",
                url=PATH,
                params=(("pageSize", "1"),),
                headers=auth,
                label=f"nobb probe {n + 1}",
            )
            took, status, headers = await _timed(endpoint, request)
            if status == 401:
                raise AuthError("nobb: the server refused nobb.username / nobb.password")
            times.append(took)
            lower = {k.lower(): v for k, v in headers.items()}
            for name in TOTAL:
                if lower.get(name, "").isdigit():
                    hits = int(lower[name])
    return {**_latency(times), **_policy(limiter), "x_totalHits": hits}


async def _dbk(cfg: DbkConfig, clock: Clock) -> dict[str, Any]:
    from harvester.sources.dbk_auth import DbkSession
    from harvester.sources.dbk_fetch import EXPORT

    times: list[float] = []
    async with HttpClient(_settings(cfg), base_url=cfg.base_url) as http:
        endpoint = _endpoint(cfg, http, clock)
        session = DbkSession(cfg, http, clock, policy=RetryPolicy(attempts=1))
        t0 = clock.monotonic()
        token = await session.bearer()
        times.append(clock.monotonic() - t0)
        params = (("updatedFrom", "20990101T000000Z"), ("updatedTo", "20990101T000001Z"))
        for n in range(2):
            request = Request(
                method="GET",
                url=EXPORT,
                params=params,
                headers=(("Authorization", f"Bearer {token}"),),
                label=f"dbk probe {n + 1}",
            )
            took, status, _ = await _timed(endpoint, request)
            if status == 401:
                raise AuthError("dbk: the export refused the token the authentication gave")
            times.append(took)
    return {**_latency(times), **_policy(endpoint.limiter)}


def _latency(times: list[float]) -> dict[str, Any]:
    warm = min(times[1:]) if len(times) > 1 else times[0]
    return {
        "first_byte_ms": round(warm * 1000, 1),
        "connect_ms": round(max(0.0, times[0] - warm) * 1000, 1),
    }


def _policy(limiter: RateLimiter) -> dict[str, Any]:
    p = limiter.policy
    report = limiter.report()
    return {
        "limit": report["limit"],
        "window": report["window"],
        "window_from": p.window_source,
        "family": report["family"],
        "reset_style": report["reset_style"],
        "kind": report["kind"],
        "kind_seen": p.kind_seen,
        "skew": report["skew"],
        "remaining": p.left(),
        "requests": report["requests"],
        "429s": report["429s"],
        "policy": limiter.describe(),
    }


def sweep_command(found: dict[str, Any], fallback: str) -> str:
    """The ``harvester bench --sweep`` line that simulates this API (limit, latency, headers)."""
    limit, window = found.get("limit"), found.get("window")
    rate = f"{limit}/{float(window):g}s" if limit and window else fallback
    parts = [
        "harvester bench --sweep",
        f"--rate-limit {rate}",
        f"--latency-ms {float(found['first_byte_ms']):.0f}",
    ]
    family = {"ietf": "ietf", "ietf6": "ietf6"}.get(str(found.get("family")))
    if family:
        parts.append(f"--rate-headers {family}")
    elif found.get("reset_style") == "delta":
        parts.append("--reset-style delta")
    if found.get("kind") == "sliding":
        parts.append("--rate-sliding")
    if found.get("skew") and found.get("family"):
        parts.append(f"--clock-skew {found['skew']}")
    return " ".join(parts)


async def probe(cfg: Config, sources: list[str], clock: Clock | None = None) -> dict[str, Any]:
    """Probe each named source (all configured ones when empty); ConfigError if one is absent."""
    clock = clock or SystemClock()
    names = sources or [n for n in ("nobb", "dbk") if getattr(cfg, n) is not None]
    if not names:
        raise ConfigError("no [nobb] or [dbk] section in the config")
    out: dict[str, Any] = {}
    for name in names:
        section = getattr(cfg, name)
        if section is None:
            raise ConfigError(f"no [{name}] section in the config")
        found = await (_nobb(section, clock) if name == "nobb" else _dbk(section, clock))
        ceiling = section.rate_limit if section.rate is not None else "0"
        found["sweep"] = sweep_command(found, ceiling)
        out[name] = found
    return out


def _kind(f: dict[str, Any]) -> str:
    if not f["kind"]:
        return "no"
    return f["kind"] if f.get("kind_seen") else f"{f['kind']} (assumed)"


def render(found: dict[str, Any], *, as_json: bool = False) -> str:
    """The report: one block per source, or JSON."""
    if as_json:
        return orjson.dumps(found, option=orjson.OPT_INDENT_2).decode()
    lines = []
    for name, f in found.items():
        window = "unknown" if not f["window"] else f"{f['window']:g}s ({f['window_from']})"
        lines += [
            f"{name}:",
            f"  latency       first byte {f['first_byte_ms']:g} ms, connect {f['connect_ms']:g} ms",
        ]
        if f["family"]:
            lines += [
                f"  limit         {f['limit'] if f['limit'] is not None else 'not announced'}"
                f" per {window}",
                f"  headers       {f['family']}, reset {f['reset_style'] or 'none'}, "
                f"{_kind(f)} window, clock skew {f['skew']:+d} s",
            ]
        else:
            seen = (
                f"429s seen: {f['policy'].split('; ', 1)[-1]}"
                if f["429s"]
                else ("nothing is paced (beyond the ceiling) unless a 429 shows a quota")
            )
            lines += [
                "  limit         no rate headers: the server announced no limit",
                f"  headers       no rate headers; {seen}",
            ]
        if name == "nobb":
            hits = f["x_totalHits"]
            lines.append(
                f"  x-totalHits   {hits:,}" if hits is not None else "  x-totalHits   absent"
            )
        lines.append(f"  requests      {f['requests']} (429s: {f['429s']})")
        lines.append(f"  simulate it:  {f['sweep']}")
    return "\n".join(lines)
