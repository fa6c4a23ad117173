"""The simulated NOBB API over a real socket: paging, tokens, expiry, filters, errors, limits."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import date, timedelta

import aiohttp
import orjson
import pytest

from harvester.sim.nobb import NobbApi
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.clocks import Wall
from tests.harness import NOBB, basic_auth

S = SimSettings(nobb_items=2500, dbk_products=10, rate_limit=0, seed=3)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(S, clock=Wall(1_790_000_000.0)) as s:
        yield s


async def _walk(
    http: aiohttp.ClientSession, url: str, **params: str
) -> tuple[list[int], list[dict[str, str]]]:
    keys: list[int] = []
    heads: list[dict[str, str]] = []
    token = None
    while True:
        q = dict(params, **({"pageToken": token} if token else {}))
        async with http.get(url + NOBB, params=q, headers=basic_auth(S)) as r:
            assert r.status == 200, await r.text()
            keys += [item["nobbNumber"] for item in orjson.loads(await r.read())]
            heads.append(dict(r.headers))
            token = r.headers.get("x-forwardToken")
        if token is None:
            return keys, heads


async def test_ascending_walk_is_the_catalogue(sim: Simulator) -> None:
    """Walking every page ascending gives exactly the catalogue's keys in order."""
    async with aiohttp.ClientSession() as http:
        keys, heads = await _walk(http, sim.url, pageSize="1000")
    assert keys == sim.nobb_keys()
    assert len(heads) == 3
    assert [h["x-totalHits"] for h in heads] == ["2500"] * 3
    assert "x-backwardToken" not in heads[0]
    assert "x-backwardToken" in heads[1]
    assert "x-forwardToken" not in heads[2]


async def test_descending_walk_is_the_catalogue_reversed(sim: Simulator) -> None:
    """sortOrder=desc walks the same keys from the top down."""
    async with aiohttp.ClientSession() as http:
        keys, _ = await _walk(http, sim.url, pageSize="700", sortOrder="desc")
    assert keys == sim.nobb_keys()[::-1]


async def test_other_sort_fields(sim: Simulator) -> None:
    """OwnerParticipantNo and Created sort by that field, ties by nobbNumber."""
    cat = sim.ctx.nobb
    async with aiohttp.ClientSession() as http:
        keys, _ = await _walk(http, sim.url, pageSize="900", sortField="OwnerParticipantNo")
        expected = sorted(range(cat.size), key=lambda p: (cat.owner[p], cat.keys[p]))
        assert keys == [cat.keys[p] for p in expected]
        keys, _ = await _walk(http, sim.url, pageSize="900", sortField="Created")
        expected = sorted(range(cat.size), key=lambda p: (cat.created[p], cat.keys[p]))
        assert keys == [cat.keys[p] for p in expected]


async def test_tokens_carry_the_walk_start_and_expire(sim: Simulator) -> None:
    """A chain started more than token_ttl ago gets page 1 back, with status 200."""
    clock = sim.ctx.clock
    assert isinstance(clock, Wall)
    async with aiohttp.ClientSession() as http:
        q = {"pageSize": "1000"}
        async with http.get(sim.url + NOBB, params=q, headers=basic_auth(S)) as r:
            first = orjson.loads(await r.read())
            token = r.headers["x-forwardToken"]
        direction, page, _, last, _ = base64.b64decode(token).decode().split("|")
        assert (direction, page, int(last)) == ("F", "2", first[-1]["nobbNumber"])
        clock.now += 7000
        async with http.get(
            sim.url + NOBB, params={**q, "pageToken": token}, headers=basic_auth(S)
        ) as r:
            second = orjson.loads(await r.read())
            token = r.headers["x-forwardToken"]
        assert second[0]["nobbNumber"] > first[-1]["nobbNumber"]
        clock.now += 300  # the chain is now 7300 s old, its last page only 300 s
        async with http.get(
            sim.url + NOBB, params={**q, "pageToken": token}, headers=basic_auth(S)
        ) as r:
            assert r.status == 200
            third = orjson.loads(await r.read())
        assert third == first
    assert sim.stats["expired_tokens"] == 1


async def test_backward_token_returns_the_previous_page(sim: Simulator) -> None:
    """x-backwardToken of page 2 leads back to page 1."""
    async with aiohttp.ClientSession() as http:
        q = {"pageSize": "500"}
        async with http.get(sim.url + NOBB, params=q, headers=basic_auth(S)) as r:
            page1 = await r.read()
            token = r.headers["x-forwardToken"]
        async with http.get(
            sim.url + NOBB, params={**q, "pageToken": token}, headers=basic_auth(S)
        ) as r:
            back = r.headers["x-backwardToken"]
        async with http.get(
            sim.url + NOBB, params={**q, "pageToken": back}, headers=basic_auth(S)
        ) as r:
            assert await r.read() == page1


async def test_date_filters_are_inclusive(sim: Simulator) -> None:
    """from/to select items whose last-modified day lies within, both ends included."""
    cat = sim.ctx.nobb
    day = sorted(cat.modified)[1200]
    lo = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
    hi = (date(1970, 1, 1) + timedelta(days=day + 30)).isoformat()
    expected = [cat.keys[p] for p in range(cat.size) if day <= cat.modified[p] <= day + 30]
    async with aiohttp.ClientSession() as http:
        keys, heads = await _walk(http, sim.url, pageSize="10000", **{"from": lo, "to": hi})
    assert keys == expected
    assert heads[0]["x-totalHits"] == str(len(expected))


async def test_nobbnos_suppliers_and_post_bodies(sim: Simulator) -> None:
    """nobbnos, suppliers and both POST body forms select exactly the named items."""
    wanted = sim.nobb_keys()[5:9]
    async with aiohttp.ClientSession() as http:
        q = {"nobbnos": ",".join(map(str, wanted))}
        keys, _ = await _walk(http, sim.url, **q)
        assert keys == wanted
        for body in (wanted, {"nobbNos": wanted}):
            async with http.post(sim.url + NOBB, json=body, headers=basic_auth(S)) as r:
                assert [i["nobbNumber"] for i in orjson.loads(await r.read())] == wanted
        owner = sim.ctx.nobb.owner[0]
        keys, _ = await _walk(http, sim.url, pageSize="10000", suppliers=str(owner))
    items = range(sim.ctx.nobb.size)
    assert keys == [
        sim.ctx.nobb.keys[p] for p in items if owner in sim.ctx.nobb._supplier_numbers(p)
    ]
    assert 0 < len(keys) < 2500


async def test_items_have_the_real_shape(sim: Simulator) -> None:
    """Items carry the documented fields, and some an unknown extra field."""
    async with aiohttp.ClientSession() as http:
        async with http.get(sim.url + NOBB, params={"pageSize": "100"}, headers=basic_auth(S)) as r:
            items = orjson.loads(await r.read())
    for field in ("nobbNumber", "primaryText", "productGroupNumber", "suppliers", "properties",
                  "status", "replacesNobbNumbers", "nrfNumber"):  # fmt: skip
        assert field in items[0]
    assert set(items[0]["properties"]) == {"etim", "environment", "marketing", "epd", "other"}
    assert items[0]["suppliers"][0]["isMainSupplier"] is True
    assert any("futureField" in item for item in items)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pageSize": "10001"}, "pageSize must be between 1 and 10000"),
        ({"pageSize": "0"}, "pageSize must be between"),
        ({"pageSize": "x"}, "pageSize must be an integer"),
        ({"pageToken": "not-a-token"}, "pageToken is not a valid token"),
        ({"sortField": "Name"}, "sortField must be one of"),
        ({"sortOrder": "up"}, "sortOrder must be asc or desc"),
        ({"from": "2020-13-01"}, "from is not a valid date"),
        ({"to": "01.01.2020"}, "to must be a date as yyyy-mm-dd"),
    ],
)
async def test_bad_parameters_are_400(sim: Simulator, params: dict[str, str], message: str) -> None:
    """Each bad parameter is a 400 with a JSON message."""
    async with aiohttp.ClientSession() as http:
        async with http.get(sim.url + NOBB, params=params, headers=basic_auth(S)) as r:
            assert r.status == 400
            assert message in (await r.json())["message"]


async def test_auth_is_required(sim: Simulator) -> None:
    """No or wrong Basic credentials give 401."""
    bad = {"Authorization": "Basic " + base64.b64encode(b"harvester:nope").decode()}
    async with aiohttp.ClientSession() as http:
        for headers in ({}, bad):
            async with http.get(sim.url + NOBB, headers=headers) as r:
                assert r.status == 401


async def test_kebab_header_spelling() -> None:
    """The kebab style sends x-total-hits and x-forward-token, as the docs' example does."""
    async with Simulator(S, nobb_header_style="kebab") as sim, aiohttp.ClientSession() as http:
        async with http.get(sim.url + NOBB, headers=basic_auth(S)) as r:
            assert r.headers["x-total-hits"] == "2500"
            assert "x-forward-token" in r.headers
            assert "x-totalHits" not in r.headers


async def test_same_seed_same_bytes() -> None:
    """Two simulators with the same seed serve byte-identical pages; another seed differs."""
    bodies = []
    for seed in (3, 3, 4):
        async with Simulator(SimSettings(nobb_items=300, seed=seed)) as sim:
            async with aiohttp.ClientSession() as http:
                async with http.get(sim.url + NOBB, headers=basic_auth(S)) as r:
                    bodies.append(await r.read())
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


async def test_kept_renders_serve_the_same_bytes_and_follow_a_change() -> None:
    """A page served again (its items' renders kept) is byte-identical to a fresh simulator's;
    an item touched since shows its new date, as a fresh render of it does."""
    settings = SimSettings(nobb_items=300, seed=3)

    async def page(sim: Simulator) -> bytes:
        async with aiohttp.ClientSession() as http:
            async with http.get(sim.url + NOBB, headers=basic_auth(S)) as r:
                return await r.read()

    async with Simulator(settings) as fresh:
        first = await page(fresh)
    async with Simulator(settings) as sim:
        assert await page(sim) == first
        assert await page(sim) == first  # every item's render kept from the first answer
        key = sim.nobb_keys()[7]
        sim.touch_nobb(key, date(2026, 11, 19))
        items = orjson.loads(await page(sim))
        touched = next(i for i in items if i["nobbNumber"] == key)
        assert touched["status"]["lastModifiedDate"].startswith("2026-11-19")
        cat = sim.ctx.nobb
        pos = cat.position(key)
        assert pos is not None
        assert cat.render(pos) == cat._render(pos)
        assert [i for i in items if i["nobbNumber"] != key] == [
            i for i in orjson.loads(first) if i["nobbNumber"] != key
        ]


async def test_page_one_of_a_day_range_is_the_same_quick_or_from_the_ordering(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probes answered without the range's ordering match the answers built from it."""
    built: list[object] = []
    ordering = NobbApi._ordering

    def counting(self: NobbApi, filters: tuple[object, ...], sort_field: str) -> object:
        built.append(filters)
        return ordering(self, filters, sort_field)

    monkeypatch.setattr(NobbApi, "_ordering", counting)
    days = sorted(sim.ctx.nobb.modified)
    iso = [(date(1970, 1, 1) + timedelta(days=days[i])).isoformat() for i in (0, 300, 1800)]
    cases = [{"to": iso[1]}, {"from": iso[1], "to": iso[2]}, {"from": iso[2]}, {"to": iso[0]},
             {"from": "2030-01-01"}, {}]  # fmt: skip
    async with aiohttp.ClientSession() as http:

        async def page(params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
            async with http.get(sim.url + NOBB, params=params, headers=basic_auth(S)) as r:
                assert r.status == 200
                body = await r.read()
                return body, {k: v for k, v in r.headers.items() if k.startswith("x-")}

        quick_ones = 0
        for case in cases:
            for order in ("asc", "desc"):
                for size in ("1", "100"):
                    params = {**case, "sortOrder": order, "pageSize": size}
                    sim.ctx.nobb_generation += 1  # nothing cached
                    built.clear()
                    quick = await page(params)
                    quick_ones += not built
                    await page({**params, "pageSize": "10000"})  # builds and caches the ordering
                    assert await page(params) == quick, params
    assert quick_ones >= 16  # all but the sparsest range ({"to": the first day})


async def test_concurrent_probes_each_wait_their_own_latency() -> None:
    """32 probes of different day ranges at once take about one latency, not one after another.

    Each new range would otherwise cost a scan of the 200,000 items (~25 ms, serialised).
    """
    s = SimSettings(nobb_items=200_000, dbk_products=10, rate_limit=0, latency_ms=500)
    loop = asyncio.get_running_loop()
    async with Simulator(s) as sim, aiohttp.ClientSession() as http:

        async def probe(day: date) -> int:
            params = {"pageSize": "1", "to": day.isoformat()}
            async with http.get(sim.url + NOBB, params=params, headers=basic_auth(s)) as r:
                await r.read()
                return int(r.headers["x-totalHits"])

        start = loop.time()
        counts = await asyncio.gather(
            *(probe(date(2005, 1, 1) + timedelta(days=200 * i)) for i in range(32))
        )
        elapsed = loop.time() - start
    assert counts == sorted(counts) and counts[-1] > 0
    assert 0.5 <= elapsed < 0.9
