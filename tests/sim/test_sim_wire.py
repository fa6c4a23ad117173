"""Simulator transport over a real socket: fixed-window rate limits, compression, fault profiles."""

from __future__ import annotations

import contextlib
import gzip
import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import brotli
import orjson
import pytest
from lxml import etree

from harvester.sim.books import basic as onix_time
from harvester.sim.server import Simulator
from harvester.sim.settings import FaultProfile, SimSettings
from tests.clocks import Wall
from tests.harness import DBK_AUTH, DBK_EXPORT, NOBB, ONIX_NS, basic_auth, bearer

T = TypeVar("T")
RESET = "1790000010"  # the end of the 10 s window holding T0, as an integer epoch


def limits(r: aiohttp.ClientResponse) -> tuple[int, str, str, str]:
    return (
        r.status,
        r.headers["x-ratelimit-limit"],
        r.headers["x-ratelimit-remaining"],
        r.headers["x-ratelimit-reset"],
    )


async def test_fixed_window_counts_down_then_429(wall: Wall, http: aiohttp.ClientSession) -> None:
    """3 per 10 s: remaining 2, 1, 0, reset = window end; the 4th is 429 with the same headers."""
    s = SimSettings(nobb_items=20, dbk_products=0, rate_limit=3, rate_window=10)
    seen = []
    async with Simulator(s, clock=wall) as sim:
        for _ in range(4):
            async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
                seen.append(limits(r))
                last = await r.read()
    assert seen == [
        (200, "3", "2", RESET),
        (200, "3", "1", RESET),
        (200, "3", "0", RESET),
        (429, "3", "0", RESET),
    ]
    assert orjson.loads(last) == {"status": 429, "message": "Too many requests"}
    assert (sim.stats["nobb_requests"], sim.stats["nobb_429"]) == (4, 1)


async def test_next_window_resets_the_count(wall: Wall, http: aiohttp.ClientSession) -> None:
    """Moving the clock into the next window gives 3 fresh requests with the next reset."""
    s = SimSettings(nobb_items=20, dbk_products=0, rate_limit=3, rate_window=10)
    async with Simulator(s, clock=wall) as sim:
        for _ in range(4):
            async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
                await r.read()
        wall.now = 1_790_000_009.999
        async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
            assert limits(r) == (429, "3", "0", RESET)
        wall.now = 1_790_000_010.0
        seen = []
        for _ in range(4):
            async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
                seen.append(limits(r))
    nxt = "1790000020"
    assert seen == [
        (200, "3", "2", nxt),
        (200, "3", "1", nxt),
        (200, "3", "0", nxt),
        (429, "3", "0", nxt),
    ]


async def test_no_limit_sends_no_rate_headers(wall: Wall, http: aiohttp.ClientSession) -> None:
    """rate_limit=0: every request is served and no x-ratelimit-* header is sent."""
    s = SimSettings(nobb_items=20, dbk_products=0, rate_limit=0)
    async with Simulator(s, clock=wall) as sim:
        for _ in range(5):
            async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
                assert r.status == 200
                assert [h for h in r.headers if h.lower().startswith("x-ratelimit")] == []


async def test_each_api_has_its_own_window(wall: Wall, http: aiohttp.ClientSession) -> None:
    """Exhausting the NOBB window leaves the DBK window untouched."""
    s = SimSettings(nobb_items=20, dbk_products=20, rate_limit=1, rate_window=10)
    async with Simulator(s, clock=wall) as sim:
        for status in (200, 429):
            async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
                assert r.status == status
        body = {"username": s.username, "password": s.password}
        async with http.post(sim.url + DBK_AUTH, json=body) as r:
            token = (await r.json())["token"]
        async with http.get(sim.url + DBK_EXPORT, headers=bearer(token)) as r:
            assert r.status == 200
            assert r.headers["X-RateLimit-Remaining"] == "0"


async def test_gzip_and_br_decode_to_the_identity_bytes(wall: Wall) -> None:
    """A multi-chunk page sent gzip, br and identity carries the same bytes; headers say so."""
    s = SimSettings(nobb_items=3000, dbk_products=0, rate_limit=0)
    raw: dict[str, bytes] = {}
    async with (
        Simulator(s, clock=wall) as sim,
        aiohttp.ClientSession(auto_decompress=False) as http,
    ):
        for offer, expected in (("identity", None), ("gzip", "gzip"), ("br", "br"),
                                ("gzip, deflate, br", "br"), ("br;q=0, gzip", "gzip")):  # fmt: skip
            headers = {**basic_auth(s), "Accept-Encoding": offer}
            async with http.get(sim.url + NOBB, params={"pageSize": "3000"}, headers=headers) as r:
                assert r.status == 200
                assert r.headers.get("Content-Encoding") == expected
                assert r.headers["Vary"] == "Accept-Encoding"
                raw[offer] = await r.read()
    plain = raw["identity"]
    assert len(plain) > 4 * 64 * 1024
    assert [i["nobbNumber"] for i in orjson.loads(plain)] == sim.nobb_keys()
    assert gzip.decompress(raw["gzip"]) == plain
    assert gzip.decompress(raw["br;q=0, gzip"]) == plain
    assert brotli.decompress(raw["br"]) == plain
    assert brotli.decompress(raw["gzip, deflate, br"]) == plain
    assert len(raw["gzip"]) < len(plain) // 3
    assert len(raw["br"]) < len(plain) // 3


async def test_client_auto_decompression_agrees(wall: Wall, http: aiohttp.ClientSession) -> None:
    """aiohttp's own decoding of gzip and br gives the identity bytes too."""
    s = SimSettings(nobb_items=1500, dbk_products=0, rate_limit=0)
    bodies = []
    async with Simulator(s, clock=wall) as sim:
        for offer in ("identity", "gzip", "br"):
            headers = {**basic_auth(s), "Accept-Encoding": offer}
            async with http.get(sim.url + NOBB, params={"pageSize": "1500"}, headers=headers) as r:
                bodies.append(await r.read())
    assert bodies[0] == bodies[1] == bodies[2]


class Retrier:
    """Runs a request up to 5 times, retrying the failures a fault profile can cause."""

    ATTEMPTS = 5

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}

    async def __call__(self, attempt: Callable[[], Awaitable[T]]) -> T:
        for _ in range(self.ATTEMPTS):
            try:
                return await attempt()
            except Failed as exc:
                kind = str(exc)
            except aiohttp.ClientError as exc:  # reset mid-body, broken compressed stream
                kind = type(exc).__name__
            except (orjson.JSONDecodeError, etree.XMLSyntaxError) as exc:  # truncated, malformed
                kind = type(exc).__name__
            self.failures[kind] = self.failures.get(kind, 0) + 1
        raise AssertionError(f"a request failed {self.ATTEMPTS} times: {self.failures}")

    @property
    def total(self) -> int:
        return sum(self.failures.values())


class Failed(Exception):
    """A non-success status seen by the retrying client."""


async def nobb_walk(sim: Simulator, s: SimSettings, retry: Retrier, encoding: str) -> list[int]:
    """Walk all pages with pageSize 20, retrying each request."""
    keys: list[int] = []
    token: str | None = None
    headers = {**basic_auth(s), "Accept-Encoding": encoding}
    async with aiohttp.ClientSession() as http:
        while True:
            params = {"pageSize": "20", **({"pageToken": token} if token else {})}

            async def page(params: dict[str, str] = params) -> tuple[list[int], str | None]:
                async with http.get(sim.url + NOBB, params=params, headers=headers) as r:
                    if r.status != 200:
                        raise Failed(str(r.status))
                    items = orjson.loads(await r.read())
                    return [i["nobbNumber"] for i in items], r.headers.get("x-forwardToken")

            got, token = await retry(page)
            keys += got
            if token is None:
                return keys


async def dbk_windows(sim: Simulator, s: SimSettings, retry: Retrier) -> list[bytes]:
    """Every product element of 40 consecutive windows, retrying each export request."""
    times = sim.ctx.books.times
    edges = [times[0]] + [times[k * len(times) // 40] for k in range(1, 40)] + [times[-1] + 1]
    products: list[bytes] = []
    async with aiohttp.ClientSession() as http:
        body = {"username": s.username, "password": s.password}
        async with http.post(sim.url + DBK_AUTH, json=body) as r:
            headers = {**bearer((await r.json())["token"]), "Accept-Encoding": "gzip"}
        for lo, hi in itertools.pairwise(edges):
            params = {"updatedFrom": onix_time(lo), "updatedTo": onix_time(hi)}

            async def window(params: dict[str, str] = params) -> list[bytes]:
                async with http.get(sim.url + DBK_EXPORT, params=params, headers=headers) as r:
                    if r.status == 204:
                        return []
                    if r.status != 200:
                        raise Failed(str(r.status))
                    doc = etree.fromstring(await r.read())
                return [etree.tostring(p) for p in doc.iterfind(f"{{{ONIX_NS}}}Product")]

            products += await retry(window)
    return products


@pytest.mark.parametrize("profile", ["flaky", "hostile"])
async def test_fault_profiles_heal_for_a_retrying_client(wall: Wall, profile: FaultProfile) -> None:
    """Retrying each failure up to 5 times yields exactly the clean NOBB keys and DBK products."""
    clean_settings = SimSettings(nobb_items=5000, dbk_products=2000, rate_limit=0, seed=4)
    s = SimSettings(
        nobb_items=5000, dbk_products=2000, seed=4, faults=profile,
        rate_limit=100_000, rate_window=60,
    )  # fmt: skip
    async with Simulator(clean_settings, clock=wall) as clean:
        clean_retry = Retrier()
        clean_products = await dbk_windows(clean, clean_settings, clean_retry)
        assert clean_retry.failures == {}
        assert clean.ctx.faults.injected == {}
    retry = Retrier()
    async with Simulator(s, clock=wall) as sim:
        keys = await nobb_walk(sim, s, retry, "gzip" if profile == "flaky" else "br")
        products = await dbk_windows(sim, s, retry)
    assert keys == sim.nobb_keys()
    assert len(clean_products) == 2000
    assert products == clean_products
    injected = sim.ctx.faults.injected
    expected_kinds = {"error500", "reset", "slow"}
    if profile == "hostile":
        expected_kinds |= {"throttle", "truncate", "malformed"}
    assert set(injected) == expected_kinds
    # Every injected fault but a slow body costs the client exactly one failed attempt.
    assert retry.total == sum(n for kind, n in injected.items() if kind != "slow")
    assert retry.failures.get("500") == injected["error500"]
    assert retry.failures.get("429") == injected.get("throttle")
    if profile == "hostile":
        # After 200 requests the limit drops to half.
        assert sim.ctx.limits["nobb"].limit == 50_000
        assert sim.ctx.limits["dbk"].limit == 50_000
    else:
        assert sim.ctx.limits["nobb"].limit == 100_000


async def test_hostile_limit_drop_after_200_requests(
    wall: Wall, http: aiohttp.ClientSession
) -> None:
    """The hostile profile keeps the limit for 199 requests, then halves it from the 200th on."""
    s = SimSettings(nobb_items=5, dbk_products=0, faults="hostile", rate_limit=1000, seed=9)
    async with Simulator(s, clock=wall) as sim:
        for n in range(1, 202):
            async with http.get(sim.url + NOBB, params={"n": str(n)}, headers=basic_auth(s)) as r:
                assert r.headers["x-ratelimit-limit"] == ("1000" if n <= 200 else "500"), n
                with contextlib.suppress(aiohttp.ClientPayloadError):  # an injected reset
                    await r.read()
    assert sim.ctx.limits["nobb"].limit == 500
