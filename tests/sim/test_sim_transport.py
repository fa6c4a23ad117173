"""Simulator transport: compression, fixed-window rate limits, and fault profiles that heal."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sim.wire import choose_encoding
from tests.clocks import Wall
from tests.harness import NOBB, basic_auth


def test_encoding_negotiation() -> None:
    """The highest q wins, br a tie with gzip, q=0 refuses, anything else is identity."""
    assert choose_encoding("gzip, deflate, br") == "br"
    assert choose_encoding("gzip, br;q=0.5") == "gzip"
    assert choose_encoding("gzip;q=0.2, br;q=0.9") == "br"
    assert choose_encoding("deflate;q=1, identity") == "identity"
    assert choose_encoding("gzip") == "gzip"
    assert choose_encoding("br;q=0, gzip") == "gzip"
    assert choose_encoding("") == "identity"


async def test_gzip_and_br_carry_the_same_bytes() -> None:
    """A page sent as gzip, br and identity decodes to identical bytes, with the right headers."""
    s = SimSettings(nobb_items=3000, rate_limit=0)
    bodies = {}
    async with Simulator(s) as sim, aiohttp.ClientSession() as http:
        for enc in ("gzip", "br", "identity"):
            headers = {**basic_auth(s), "Accept-Encoding": enc}
            async with http.get(sim.url + NOBB, params={"pageSize": "3000"}, headers=headers) as r:
                assert r.headers.get("Content-Encoding", "identity") == enc
                assert r.headers["Vary"] == "Accept-Encoding"
                assert r.headers["Transfer-Encoding"] == "chunked"
                bodies[enc] = await r.read()
    assert bodies["gzip"] == bodies["br"] == bodies["identity"]
    assert len(orjson.loads(bodies["br"])) == 3000


async def test_fixed_window_rate_limit() -> None:
    """3 requests per 10 s window: remaining counts down, the 4th is 429, the next window resets."""
    s = SimSettings(nobb_items=50, rate_limit=3, rate_window=10)
    clock = Wall(1_790_000_003.5)
    seen = []
    async with Simulator(s, clock=clock) as sim, aiohttp.ClientSession() as http:
        for _ in range(4):
            async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
                seen.append(
                    (r.status, r.headers["x-ratelimit-remaining"], r.headers["x-ratelimit-reset"])
                )
        clock.now += 10
        async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
            assert (r.status, r.headers["x-ratelimit-remaining"]) == (200, "2")
            assert r.headers["x-ratelimit-limit"] == "3"
    reset = "1790000010"
    assert seen == [(200, "2", reset), (200, "1", reset), (200, "0", reset), (429, "0", reset)]
    assert sim.stats["nobb_429"] == 1


async def test_no_limit_sends_no_rate_headers() -> None:
    """rate_limit 0 means unlimited and no x-ratelimit-* headers."""
    s = SimSettings(nobb_items=10, rate_limit=0)
    async with Simulator(s) as sim, aiohttp.ClientSession() as http:
        async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
            assert not [h for h in r.headers if h.lower().startswith("x-ratelimit")]


async def _retrying_walk(sim: Simulator, s: SimSettings) -> list[int]:
    keys: list[int] = []
    token = None
    async with aiohttp.ClientSession() as http:
        while True:
            params = {"pageSize": "200", **({"pageToken": token} if token else {})}
            for _attempt in range(6):
                try:
                    async with http.get(sim.url + NOBB, params=params, headers=basic_auth(s)) as r:
                        if r.status != 200:
                            continue
                        page = orjson.loads(await r.read())
                        token = r.headers.get("x-forwardToken")
                        break
                except (aiohttp.ClientError, orjson.JSONDecodeError):
                    continue
            else:
                raise AssertionError("a request kept failing")
            keys += [item["nobbNumber"] for item in page]
            if token is None:
                return keys


async def test_flaky_and_hostile_heal_on_retry() -> None:
    """Under flaky and hostile faults, every kind of each injected, a retrying client still gets
    exactly the catalogue."""
    flaky = {"error500", "reset", "slow"}
    kinds = {"flaky": flaky, "hostile": flaky | {"throttle", "truncate", "malformed"}}
    for profile in ("flaky", "hostile"):
        # 35 pages; with the clock fixed the page tokens, so the faults drawn, are the same each
        # run, and seed 27 draws every kind of both profiles among them.
        s = SimSettings(nobb_items=7_000, faults=profile, rate_limit=0, seed=27)
        async with Simulator(s, clock=Wall()) as sim:
            assert await _retrying_walk(sim, s) == sim.nobb_keys()
            assert set(sim.ctx.faults.injected) == kinds[profile]


async def test_hostile_limit_drops_to_half() -> None:
    """After 200 requests the hostile profile halves the rate limit."""
    s = SimSettings(nobb_items=10, faults="hostile", rate_limit=1000, rate_window=60)
    async with Simulator(s) as sim, aiohttp.ClientSession() as http:
        for _ in range(201):
            async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
                await r.read()
        assert sim.ctx.limits["nobb"].limit == 500


async def test_latency_delays_the_first_byte() -> None:
    """--latency-ms holds back the answer's first byte by at least that long."""
    s = SimSettings(nobb_items=10, rate_limit=0, latency_ms=150)
    loop = asyncio.get_running_loop()
    async with Simulator(s) as sim, aiohttp.ClientSession() as http:
        start = loop.time()
        async with http.get(sim.url + NOBB, headers=basic_auth(s)) as r:
            assert r.status == 200
            elapsed = loop.time() - start
    assert elapsed >= 0.15
