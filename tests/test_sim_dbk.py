"""The simulated DBK export over a real socket: JWT auth, problem+json, 204, the cap, edges, XSD."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib.resources import files

import aiohttp
import orjson
import pytest
from lxml import etree

from harvester.sim.books import basic
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.simtools import WallClock

S = SimSettings(nobb_items=10, dbk_products=3500, dbk_max_products=300, rate_limit=0, seed=5)
EXPORT = "/onix/document/export/v3.1"
NS = {"o": "http://ns.editeur.org/onix/3.1/reference"}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(S, clock=WallClock()) as s:
        yield s


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    xsd = files("onixcheck") / "schema" / "xsd3.1" / "ONIX_BookProduct_3.1_reference.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


async def _token(http: aiohttp.ClientSession, url: str, **query: str) -> str:
    body = {"username": S.username, "password": S.password}
    async with http.post(url + "/dwapi/users/authenticate", json=body, params=query) as r:
        assert r.status == 200
        token: str = (await r.json())["token"]
        return token


def _claims(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    claims: dict[str, object] = orjson.loads(
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    )
    return claims


async def _export(
    http: aiohttp.ClientSession, sim: Simulator, token: str, **params: str
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(sim.url + EXPORT, params=params, headers=headers) as r:
        return r.status, await r.read(), dict(r.headers)


def _refs(body: bytes) -> list[str]:
    return [e.text or "" for e in etree.fromstring(body).iterfind(".//o:RecordReference", NS)]


async def test_authenticate_gives_a_dynamicweb_jwt(sim: Simulator) -> None:
    """POST and GET authenticate return a JWT with DW claims and a 1800 s default lifetime."""
    async with aiohttp.ClientSession() as http:
        claims = _claims(await _token(http, sim.url))
        assert claims["iss"] == "Dynamicweb A/S"
        assert claims["aud"] == "WebAPI"
        assert claims["iat"] == claims["nbf"] == int(sim.ctx.clock())
        assert claims["exp"] == int(sim.ctx.clock()) + 1800
        assert (
            _claims(await _token(http, sim.url, expirationInSeconds="60"))["exp"]
            == int(sim.ctx.clock()) + 60
        )
        q = {"userName": S.username, "password": S.password}
        async with http.get(sim.url + "/dwapi/users/authenticate", params=q) as r:
            assert r.status == 200


async def test_wrong_credentials_are_404(sim: Simulator) -> None:
    """Wrong credentials answer 404 'Username or password is not valid', as DynamicWeb does."""
    async with aiohttp.ClientSession() as http:
        body = {"username": S.username, "password": "wrong"}
        async with http.post(sim.url + "/dwapi/users/authenticate", json=body) as r:
            assert r.status == 404
            assert (await r.json())["message"] == "Username or password is not valid"


async def test_refresh_and_expiry(sim: Simulator) -> None:
    """Refresh renews a live token; an expired token gets 401 problem+json and refresh 403."""
    clock = sim.ctx.clock
    assert isinstance(clock, WallClock)
    async with aiohttp.ClientSession() as http:
        token = await _token(http, sim.url)
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(sim.url + "/dwapi/users/authenticate/refresh", headers=headers) as r:
            assert r.status == 200
            assert (await r.json())["token"].count(".") == 2
        clock.now += 1801
        status, body, head = await _export(http, sim, token)
        assert status == 401
        assert head["Content-Type"] == "application/problem+json"
        problem = orjson.loads(body)
        assert set(problem) == {"type", "title", "status", "detail", "traceId"}
        assert problem["type"] == "https://tools.ietf.org/html/rfc9110#section-15.5.2"
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", problem["traceId"])
        async with http.get(sim.url + "/dwapi/users/authenticate/refresh", headers=headers) as r:
            assert r.status == 403


async def test_publisher_mismatch_is_401_with_the_documented_title(sim: Simulator) -> None:
    """A publisher that is not the caller's gets the documented 401 problem."""
    async with aiohttp.ClientSession() as http:
        status, body, _ = await _export(http, sim, await _token(http, sim.url), publisher="1")
    assert status == 401
    assert orjson.loads(body)["title"] == (
        "Publisher Id in request does not match current logged in publisher"
    )


async def test_empty_window_is_204(sim: Simulator) -> None:
    """A window with no products is 204 with no body."""
    async with aiohttp.ClientSession() as http:
        token = await _token(http, sim.url)
        status, body, _ = await _export(
            http, sim, token, updatedFrom="19900101", updatedTo="19900102"
        )
    assert (status, body) == (204, b"")


async def test_window_edges_and_the_cap(sim: Simulator) -> None:
    """updatedFrom is inclusive, updatedTo exclusive; a full window is cut at the cap."""
    books = sim.ctx.books
    t = books.times[1000]
    expected = [
        books.record_reference(p) for p in range(books.size) if t <= books.times[p] < t + 3600
    ]
    async with aiohttp.ClientSession() as http:
        token = await _token(http, sim.url)
        _, body, head = await _export(
            http, sim, token, updatedFrom=basic(t), updatedTo=basic(t + 3600)
        )
        assert _refs(body) == expected[:300]
        assert head["Content-Type"] == "application/xml; charset=utf-8"
        _, body, _ = await _export(http, sim, token, updatedFrom=basic(0), updatedTo=basic(t))
        assert len(_refs(body)) == 300  # capped: there are 1000+ before t
        status, body, _ = await _export(
            http, sim, token, updatedFrom=basic(t - 1), updatedTo=basic(t)
        )
        assert books.record_reference(1000) not in (_refs(body) if status == 200 else [])


async def test_time_forms_get_and_post_agree(sim: Simulator) -> None:
    """Basic and extended ISO forms, GET query and POST body select the same products."""
    books = sim.ctx.books
    t = books.times[2000] - books.times[2000] % 60

    def ext(ts: int, zone: str) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S") + zone

    forms = [
        (basic(t), basic(t + 86400)),
        (f"{basic(t)[:-3]}+0000", f"{basic(t + 86400)[:-3]}+0000"),
        (ext(t, "Z"), ext(t + 86400, "+00:00")),
    ]
    results = []
    async with aiohttp.ClientSession() as http:
        token = await _token(http, sim.url)
        for lo, hi in forms:
            _, body, _ = await _export(http, sim, token, updatedFrom=lo, updatedTo=hi)
            results.append(_refs(body))
        headers = {"Authorization": f"Bearer {token}"}
        body_params = {"updatedFrom": forms[0][0], "updatedTo": forms[0][1]}
        async with http.post(sim.url + EXPORT, json=body_params, headers=headers) as r:
            results.append(_refs(await r.read()))
        status, body, _ = await _export(http, sim, token, updatedFrom="yesterday")
        assert status == 400
        assert orjson.loads(body)["title"] == "Bad Request"
    assert results[0] == results[1] == results[2] == results[3]
    assert results[0]


async def test_bulk_second_holds_more_than_the_cap(sim: Simulator) -> None:
    """The catalogue has one second with cap + 1 products: a window no split can fix."""
    books = sim.ctx.books
    assert books.bulk_second is not None
    async with aiohttp.ClientSession() as http:
        token = await _token(http, sim.url)
        _, body, _ = await _export(
            http, sim, token, updatedFrom=basic(books.bulk_second),
            updatedTo=basic(books.bulk_second + 1),
        )  # fmt: skip
    assert len(_refs(body)) == 300
    assert len(books.window(books.bulk_second, books.bulk_second + 1)) == 301


async def test_messages_validate_against_the_onix_31_xsd(
    sim: Simulator, schema: etree.XMLSchema
) -> None:
    """Export documents, deletions and XHTML included, are valid ONIX 3.1 (EDItEUR XSD)."""
    books = sim.ctx.books
    seen_delete = False
    async with aiohttp.ClientSession() as http:
        token = await _token(http, sim.url)
        for k in range(0, 3400, 700):
            lo, hi = books.times[k], books.times[min(k + 250, books.size - 1)]
            _, body, _ = await _export(http, sim, token, updatedFrom=basic(lo), updatedTo=basic(hi))
            doc = etree.fromstring(body)
            assert schema.validate(doc), schema.error_log
            codes = {e.text for e in doc.iterfind(".//o:NotificationType", NS)}
            seen_delete |= "05" in codes
            assert doc.find(".//o:Text[@textformat='05']/o:p", NS) is not None
    assert seen_delete


async def test_rate_limit_headers_use_the_dbk_letter_case() -> None:
    """DBK answers carry X-RateLimit-Limit/-Remaining/-Reset."""
    settings = SimSettings(nobb_items=10, dbk_products=50, rate_limit=5, rate_window=60)
    async with Simulator(settings, clock=WallClock(1_790_000_010)) as sim:
        async with aiohttp.ClientSession() as http:
            token = await _token(http, sim.url)
            _, _, head = await _export(http, sim, token)
    assert (head["X-RateLimit-Limit"], head["X-RateLimit-Remaining"]) == ("5", "4")
    assert head["X-RateLimit-Reset"] == "1790000040"
