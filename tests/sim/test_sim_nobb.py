"""The simulated NOBB Export API over a real socket: paging, tokens, filters, sorting, errors."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.clocks import Wall
from tests.harness import NOBB, basic_auth

S = SimSettings(nobb_items=2500, dbk_products=0, rate_limit=0, seed=11)
AUTH = basic_auth(S)


@dataclass
class Page:
    """One answer of a walk: status, raw body, headers."""

    status: int
    body: bytes
    headers: dict[str, str]
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def keys(self) -> list[int]:
        return [int(item["nobbNumber"]) for item in self.items]


@pytest.fixture
async def sim(wall: Wall) -> AsyncIterator[Simulator]:
    async with Simulator(S, clock=wall) as s:
        yield s


async def send(
    http: aiohttp.ClientSession,
    sim: Simulator,
    *,
    method: str = "GET",
    params: dict[str, str] | None = None,
    json: object = None,
    headers: dict[str, str] = AUTH,
) -> Page:
    """One request to the items endpoint; a 200 body is parsed."""
    async with http.request(method, sim.url + NOBB, params=params, json=json, headers=headers) as r:
        page = Page(r.status, await r.read(), dict(r.headers))
    if page.status == 200:
        page.items = orjson.loads(page.body)
    return page


async def fetch(http: aiohttp.ClientSession, sim: Simulator, **params: str) -> Page:
    """A GET with the account's credentials and the given query."""
    return await send(http, sim, params=params)


async def walk(http: aiohttp.ClientSession, sim: Simulator, **params: str) -> list[Page]:
    """Every page of a forward walk with the given parameters."""
    pages: list[Page] = []
    token: str | None = None
    while True:
        page = await fetch(http, sim, **params, **({"pageToken": token} if token else {}))
        assert page.status == 200, page.body
        pages.append(page)
        token = page.headers.get("x-forwardToken")
        if token is None:
            return pages


def keys_of(pages: list[Page]) -> list[int]:
    return [k for page in pages for k in page.keys]


def iso(day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_walk_reproduces_the_catalogue(
    sim: Simulator, http: aiohttp.ClientSession, order: str
) -> None:
    """pageSize 1000 over 2,500 items: 3 pages, exactly the catalogue's keys (desc: reversed)."""
    pages = await walk(http, sim, pageSize="1000", sortOrder=order)
    expected = sim.nobb_keys() if order == "asc" else sim.nobb_keys()[::-1]
    assert keys_of(pages) == expected
    assert [len(p.items) for p in pages] == [1000, 1000, 500]
    assert [p.headers["x-totalHits"] for p in pages] == ["2500", "2500", "2500"]
    assert ["x-forwardToken" in p.headers for p in pages] == [True, True, False]
    assert ["x-backwardToken" in p.headers for p in pages] == [False, True, True]
    assert pages[0].headers["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_backward_token_leads_to_the_previous_page(
    sim: Simulator, http: aiohttp.ClientSession, order: str
) -> None:
    """x-backwardToken of page n returns exactly the bytes of page n-1."""
    pages = await walk(http, sim, pageSize="1000", sortOrder=order)
    for n in (1, 2):
        back = await fetch(
            http, sim, pageSize="1000", sortOrder=order,
            pageToken=pages[n].headers["x-backwardToken"],
        )  # fmt: skip
        assert back.status == 200
        assert back.body == pages[n - 1].body


async def test_token_older_than_ttl_gives_page_one(
    sim: Simulator, http: aiohttp.ClientSession, wall: Wall
) -> None:
    """A token past token_ttl is ignored: status 200 and page 1, whose chain starts afresh."""
    first = await fetch(http, sim, pageSize="1000")
    wall.advance(S.token_ttl + 1)
    again = await fetch(http, sim, pageSize="1000", pageToken=first.headers["x-forwardToken"])
    assert again.status == 200
    assert again.body == first.body
    assert "x-backwardToken" not in again.headers
    assert sim.stats["expired_tokens"] == 1
    # The new chain is fresh: its token works now.
    second = await fetch(http, sim, pageSize="1000", pageToken=again.headers["x-forwardToken"])
    assert second.keys == sim.nobb_keys()[1000:2000]


async def test_token_age_counts_from_the_walk_start(
    sim: Simulator, http: aiohttp.ClientSession, wall: Wall
) -> None:
    """Page 2 at 7100 s still works; page 3 at 7250 s is page 1 though page 2 is recent."""
    first = await fetch(http, sim, pageSize="1000")
    wall.advance(7100)
    second = await fetch(http, sim, pageSize="1000", pageToken=first.headers["x-forwardToken"])
    assert second.keys == sim.nobb_keys()[1000:2000]
    wall.advance(150)
    third = await fetch(http, sim, pageSize="1000", pageToken=second.headers["x-forwardToken"])
    assert third.status == 200
    assert third.body == first.body
    assert sim.stats["expired_tokens"] == 1


async def test_date_filters_are_inclusive_at_both_edges(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """from/to select exactly the items last modified on days within, both edge days included."""
    modified = sim.ctx.nobb.modified
    keys = sim.nobb_keys()
    days = sorted(set(modified))
    lo, hi = days[len(days) // 3], days[len(days) // 3 + 40]
    expected = [k for k, m in zip(keys, modified, strict=True) if lo <= m <= hi]
    pages = await walk(http, sim, pageSize="10000", **{"from": iso(lo), "to": iso(hi)})
    assert keys_of(pages) == expected
    assert pages[0].headers["x-totalHits"] == str(len(expected))
    on_lo = [k for k, m in zip(keys, modified, strict=True) if m == lo]
    on_hi = [k for k, m in zip(keys, modified, strict=True) if m == hi]
    assert on_lo and on_hi and set(on_lo) | set(on_hi) <= set(expected)
    # One day past each edge drops exactly the items of the edge day.
    narrower = await walk(http, sim, pageSize="10000", **{"from": iso(lo + 1), "to": iso(hi - 1)})
    assert keys_of(narrower) == [k for k in expected if k not in set(on_lo) | set(on_hi)]
    single = await walk(http, sim, pageSize="10000", **{"from": iso(lo), "to": iso(lo)})
    assert keys_of(single) == on_lo


async def test_nobbnos_filter_get_and_both_post_bodies(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """nobbnos (GET) and POST with a bare array or {"nobbNos"} select exactly the known numbers."""
    keys = sim.nobb_keys()
    wanted = [keys[7], keys[1234], keys[2499]]
    asked = [wanted[2], 1, wanted[0], wanted[1]]  # unknown numbers are simply not found
    page = await fetch(http, sim, nobbnos=",".join(map(str, asked)))
    assert page.keys == wanted
    assert page.headers["x-totalHits"] == "3"
    for body in (asked, {"nobbNos": asked}, [str(n) for n in asked]):
        posted = await send(http, sim, method="POST", json=body)
        assert posted.status == 200
        assert posted.body == page.body


async def test_suppliers_filter(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """suppliers selects exactly the items naming one of the participants among their suppliers."""
    everything = [i for p in await walk(http, sim, pageSize="10000") for i in p.items]
    first = everything[0]["suppliers"][0]["participantNumber"]
    second = everything[1]["suppliers"][0]["participantNumber"]
    wanted = {str(first), str(second)}
    expected = [
        i["nobbNumber"]
        for i in everything
        if wanted & {str(s["participantNumber"]) for s in i["suppliers"]}
    ]
    pages = await walk(http, sim, pageSize="10000", suppliers=f"{first},{second}")
    assert keys_of(pages) == expected
    assert 0 < len(expected) < 2500


@pytest.mark.parametrize("sort_field", ["OwnerParticipantNo", "Created"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_other_sort_fields(
    sim: Simulator, http: aiohttp.ClientSession, sort_field: str, order: str
) -> None:
    """sortField gives the catalogue ordered by that field, nobbNumber breaking ties."""
    cat = sim.ctx.nobb
    column = cat.owner if sort_field == "OwnerParticipantNo" else cat.created
    expected = [k for _, k in sorted(zip(column, cat.keys, strict=True))]
    if order == "desc":
        expected.reverse()
    pages = await walk(http, sim, pageSize="700", sortField=sort_field, sortOrder=order)
    assert keys_of(pages) == expected
    assert len(pages) == 4


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic_auth(S, password="wrong"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer abc"},
    ],
)
async def test_auth_is_required(
    sim: Simulator, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    """Missing, wrong or malformed Basic credentials answer 401 with a Basic challenge."""
    page = await send(http, sim, headers=headers)
    assert page.status == 401
    assert page.headers["WWW-Authenticate"] == 'Basic realm="NOBB"'
    assert orjson.loads(page.body) == {"status": 401, "message": "Unauthorized"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pageSize": "10001"}, "pageSize must be between 1 and 10000"),
        ({"pageSize": "0"}, "pageSize must be between 1 and 10000"),
        ({"pageSize": "ten"}, "pageSize must be an integer"),
        ({"pageToken": "garbage!"}, "pageToken is not a valid token"),
        ({"pageToken": base64.b64encode(b"X|2|1|1|1").decode()}, "pageToken is not a valid token"),
        ({"sortField": "Name"}, "sortField must be one of NobbNo, OwnerParticipantNo, Created"),
        ({"sortOrder": "sideways"}, "sortOrder must be asc or desc"),
        ({"from": "2024-02-30"}, "from is not a valid date"),
        ({"to": "20240101"}, "to must be a date as yyyy-mm-dd"),
        ({"nobbnos": "12,abc"}, "nobbnos must be a comma-separated list of numbers"),
    ],
)
async def test_bad_parameters_are_400(
    sim: Simulator, http: aiohttp.ClientSession, params: dict[str, str], message: str
) -> None:
    """Each bad parameter answers 400 with the exact JSON message."""
    page = await fetch(http, sim, **params)
    assert page.status == 400
    assert orjson.loads(page.body) == {"status": 400, "message": message}


async def test_bad_post_body_is_400(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A POST body that is not a list of numbers answers 400."""
    for body in ({"nobbNos": "1,2"}, ["x"], {"other": [1]}):
        page = await send(http, sim, method="POST", json=body)
        assert page.status == 400
        assert orjson.loads(page.body)["message"] == "the body must be a JSON array of NOBB numbers"


async def test_page_size_bounds_are_allowed(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """pageSize 1 and 10000 are both accepted."""
    one = await fetch(http, sim, pageSize="1")
    assert one.keys == sim.nobb_keys()[:1]
    full = await fetch(http, sim, pageSize="10000")
    assert full.keys == sim.nobb_keys()
    assert "x-forwardToken" not in full.headers


async def test_kebab_header_style(wall: Wall, http: aiohttp.ClientSession) -> None:
    """nobb_header_style="kebab" sends x-total-hits, x-forward-token and x-backward-token."""
    async with Simulator(S, clock=wall, nobb_header_style="kebab") as sim:
        first = await fetch(http, sim, pageSize="1000")
        second = await fetch(http, sim, pageSize="1000", pageToken=first.headers["x-forward-token"])
    assert first.headers["x-total-hits"] == "2500"
    assert "x-totalHits" not in first.headers and "x-forwardToken" not in first.headers
    assert "x-backward-token" in second.headers
    assert second.keys == sim.nobb_keys()[1000:2000]


async def test_unknown_field_on_some_items(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Some items, not all, carry a field the docs do not list; all carry the documented ones."""
    items = [i for p in await walk(http, sim, pageSize="10000") for i in p.items]
    extra = [i for i in items if "futureField" in i]
    assert 0 < len(extra) < len(items)
    documented = {"nobbNumber", "primaryText", "productGroupNumber", "status", "suppliers",
                  "properties", "replacesNobbNumbers"}  # fmt: skip
    assert all(documented <= i.keys() for i in items)


async def test_same_seed_same_bytes(wall: Wall, http: aiohttp.ClientSession) -> None:
    """Two simulators with one seed serve byte-identical pages; another seed serves other bytes."""
    bodies: list[list[bytes]] = []
    for seed in (11, 11, 12):
        async with Simulator(SimSettings(nobb_items=900, seed=seed), clock=wall) as sim:
            pages = await walk(http, sim, pageSize="400")
            bodies.append([p.body for p in pages])
    assert bodies[0] == bodies[1]
    assert len(bodies[0]) == 3
    assert bodies[0][0] != bodies[2][0]
