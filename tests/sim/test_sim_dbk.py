"""The simulated DBK ONIX export over a real socket: DynamicWeb JWTs, problems, 204, cap, edges."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import aiohttp
import orjson
import pytest
from lxml import etree

from harvester.sim.books import PUBLISHERS
from harvester.sim.books import basic as onix_time
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.clocks import Wall
from tests.harness import DBK_AUTH, DBK_EXPORT, DBK_REFRESH, ONIX_NS, bearer

S = SimSettings(
    nobb_items=0,
    dbk_products=3500,
    dbk_max_products=300,
    rate_limit=0,
    seed=5,
    dbk_bulk_second=True,
)
CREDENTIALS = {"username": S.username, "password": S.password}
TRACE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-00$")
UNAUTHORIZED = {
    "type": "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    "title": "Unauthorized",
    "status": 401,
    "detail": "A valid bearer token is required",
}


@pytest.fixture
async def sim(wall: Wall) -> AsyncIterator[Simulator]:
    async with Simulator(S, clock=wall) as s:
        yield s


@pytest.fixture
async def token(sim: Simulator, http: aiohttp.ClientSession) -> str:
    async with http.post(sim.url + DBK_AUTH, json=CREDENTIALS) as r:
        assert r.status == 200
        value: str = (await r.json())["token"]
    return value


def claims(token: str) -> dict[str, object]:
    """The JWT's payload."""
    part = token.split(".")[1]
    decoded: dict[str, object] = orjson.loads(
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    )
    return decoded


async def export(
    http: aiohttp.ClientSession, sim: Simulator, token: str, **params: str
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    """One GET export request with the given query parameters."""
    async with http.get(sim.url + DBK_EXPORT, params=params, headers=bearer(token)) as r:
        return r.status, await r.read(), r


async def export_post(
    http: aiohttp.ClientSession, sim: Simulator, token: str, body: object
) -> tuple[int, bytes, aiohttp.ClientResponse]:
    """One POST export request with a JSON body."""
    async with http.post(sim.url + DBK_EXPORT, json=body, headers=bearer(token)) as r:
        return r.status, await r.read(), r


def refs(body: bytes) -> list[str]:
    """The RecordReference of every product, in document order."""
    doc = etree.fromstring(body)
    return [
        e.text or "" for e in doc.iterfind(f"{{{ONIX_NS}}}Product/{{{ONIX_NS}}}RecordReference")
    ]


def products(body: bytes) -> bytes:
    """The message without its Header (which carries MessageNumber and SentDateTime)."""
    return body[body.index(b"</Header>") :]


def expected_refs(sim: Simulator, start: int | None, end: int | None) -> list[str]:
    books = sim.ctx.books
    return [books.record_reference(p) for p in books.window(start, end)]


def assert_problem(body: bytes, r: aiohttp.ClientResponse, status: int) -> dict[str, object]:
    assert r.status == status
    assert r.headers["Content-Type"] == "application/problem+json"
    problem: dict[str, object] = orjson.loads(body)
    assert list(problem) == ["type", "title", "status", "detail", "traceId"]
    assert problem["status"] == status
    assert TRACE.match(str(problem["traceId"]))
    return problem


async def test_authenticate_post_json_gives_a_dynamicweb_jwt(
    sim: Simulator, wall: Wall, token: str
) -> None:
    """POST JSON credentials → HS256 JWT with DW claims and exp = iat + 1800."""
    head = token.split(".")[0]
    assert orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))) == {
        "alg": "HS256",
        "typ": "JWT",
    }
    now = int(wall())
    assert claims(token) == {
        "nameid": "1", "nbf": now, "exp": now + 1800, "iat": now,
        "iss": "Dynamicweb A/S", "aud": "WebAPI",
    }  # fmt: skip


async def test_authenticate_get_form_and_expiration(
    sim: Simulator, wall: Wall, http: aiohttp.ClientSession
) -> None:
    """GET with userName/password works; expirationInSeconds sets exp on GET and POST."""
    now = int(wall())
    form = {"userName": S.username, "password": S.password}
    async with http.get(sim.url + DBK_AUTH, params=form) as r:
        assert r.status == 200
        assert claims((await r.json())["token"])["exp"] == now + 1800
    async with http.get(sim.url + DBK_AUTH, params={**form, "expirationInSeconds": "600"}) as r:
        assert claims((await r.json())["token"])["exp"] == now + 600
    q = {"expirationInSeconds": "60"}
    async with http.post(sim.url + DBK_AUTH, json=CREDENTIALS, params=q) as r:
        assert claims((await r.json())["token"])["exp"] == now + 60


async def test_wrong_credentials_are_404(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Wrong credentials answer 404 'Username or password is not valid' (POST and GET)."""
    wrong = {"message": "Username or password is not valid"}
    async with http.post(sim.url + DBK_AUTH, json={**CREDENTIALS, "password": "x"}) as r:
        assert (r.status, await r.json()) == (404, wrong)
    async with http.get(sim.url + DBK_AUTH, params={"userName": "nobody", "password": "x"}) as r:
        assert (r.status, await r.json()) == (404, wrong)
    async with http.post(sim.url + DBK_AUTH, json={"username": S.username}) as r:
        assert r.status == 400


async def test_refresh_gives_a_new_working_token(
    sim: Simulator, wall: Wall, http: aiohttp.ClientSession, token: str
) -> None:
    """Refresh of a live token answers a new token, later exp, that the export accepts."""
    wall.advance(1000)
    async with http.get(sim.url + DBK_REFRESH, headers=bearer(token)) as r:
        assert r.status == 200
        fresh: str = (await r.json())["token"]
    assert fresh != token
    assert claims(fresh)["exp"] == int(wall()) + 1800
    wall.advance(1000)  # the first token is dead now, the refreshed one is not
    status, _, _ = await export(http, sim, fresh, updatedFrom="20240101", updatedTo="20250101")
    assert status == 200
    status, body, r = await export(http, sim, token)
    assert_problem(body, r, 401)


async def test_expired_token_is_401_problem_and_refresh_403(
    sim: Simulator, wall: Wall, http: aiohttp.ClientSession, token: str
) -> None:
    """At exp the token is refused: export 401 problem+json with a W3C traceId, refresh 403."""
    wall.advance(1799)
    status, _, _ = await export(http, sim, token, updatedFrom="20250101", updatedTo="20260101")
    assert status == 200
    wall.advance(1)
    _, body, r = await export(http, sim, token)
    problem = assert_problem(body, r, 401)
    assert {k: v for k, v in problem.items() if k != "traceId"} == UNAUTHORIZED
    async with http.get(sim.url + DBK_REFRESH, headers=bearer(token)) as r:
        assert r.status == 403
        assert await r.json() == {"message": "Token could not be authorized or Token expired"}


@pytest.mark.parametrize("authorization", ["", "Bearer", "Bearer a.b.c", "Basic aGFydmVzdGVy"])
async def test_missing_or_forged_token_is_401(
    sim: Simulator, http: aiohttp.ClientSession, token: str, authorization: str
) -> None:
    """No token, a malformed one or a forged signature answer 401 problem+json."""
    headers = {"Authorization": authorization} if authorization else {}
    async with http.get(sim.url + DBK_EXPORT, headers=headers) as r:
        assert_problem(await r.read(), r, 401)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    _, body, r = await export(http, sim, forged)
    assert_problem(body, r, 401)


async def test_trace_ids_differ(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Each problem carries its own traceId."""
    traces = set()
    for _ in range(3):
        _, body, r = await export(http, sim, "x.y.z")
        traces.add(assert_problem(body, r, 401)["traceId"])
    assert len(traces) == 3


async def test_foreign_publisher_is_401_with_the_documented_title(
    sim: Simulator, http: aiohttp.ClientSession, token: str
) -> None:
    """A publisher not in the catalogue gets 401 'Publisher Id in request does not match ...'."""
    assert 999 not in PUBLISHERS
    _, body, r = await export(http, sim, token, publisher="999")
    problem = assert_problem(body, r, 401)
    assert problem["title"] == "Publisher Id in request does not match current logged in publisher"
    assert problem["detail"] == (
        "To request an onix output please request the same Publisher ID as the currently "
        "logged in publisher"
    )


async def test_publisher_filter(sim: Simulator, http: aiohttp.ClientSession, token: str) -> None:
    """A catalogue publisher selects exactly its products, in update-time order."""
    books = sim.ctx.books
    lo, hi = books.times[0], books.times[2000]
    pub = PUBLISHERS[3]
    status, body, _ = await export(
        http, sim, token, publisher=str(pub), updatedFrom=onix_time(lo), updatedTo=onix_time(hi)
    )
    assert status == 200
    expected = [books.record_reference(p) for p in range(2000) if books.publisher[p] == pub]
    assert refs(body) == expected
    ids = etree.fromstring(body).iterfind(
        f".//{{{ONIX_NS}}}PublisherIdentifier/{{{ONIX_NS}}}IDValue"
    )
    assert {e.text for e in ids} == {str(pub)}


async def test_empty_window_is_204(sim: Simulator, http: aiohttp.ClientSession, token: str) -> None:
    """A window holding no product answers 204 with an empty body."""
    status, body, _ = await export(http, sim, token, updatedFrom="19990101", updatedTo="20000101")
    assert (status, body) == (204, b"")
    status, body, _ = await export(http, sim, token, updatedFrom="20300101")
    assert (status, body) == (204, b"")


async def test_get_and_post_give_the_same_products(
    sim: Simulator, http: aiohttp.ClientSession, token: str
) -> None:
    """The same filters as query (GET) and JSON body (POST) give byte-identical products."""
    books = sim.ctx.books
    window = {"updatedFrom": onix_time(books.times[500]), "updatedTo": onix_time(books.times[700])}
    status, got, r = await export(http, sim, token, **window)
    assert (status, r.headers["Content-Type"]) == (200, "application/xml; charset=utf-8")
    status, posted, _ = await export_post(http, sim, token, window)
    assert status == 200
    assert products(got) == products(posted)
    assert refs(got) == expected_refs(sim, books.times[500], books.times[700])
    assert b"<MessageNumber>1</MessageNumber>" in got
    assert b"<MessageNumber>2</MessageNumber>" in posted


async def test_cap_returns_the_earliest_products(
    sim: Simulator, http: aiohttp.ClientSession, token: str
) -> None:
    """A window holding more than dbk_max_products returns exactly that many, earliest first."""
    books = sim.ctx.books
    start, end = books.times[0], books.times[1000]
    full = expected_refs(sim, start, end)
    assert len(full) >= 1000
    _, body, _ = await export(
        http, sim, token, updatedFrom=onix_time(start), updatedTo=onix_time(end)
    )
    assert refs(body) == full[: S.dbk_max_products]
    _, body, _ = await export(http, sim, token)  # no window at all: the whole catalogue, capped
    assert refs(body) == [books.record_reference(p) for p in range(S.dbk_max_products)]


async def test_bulk_second_holds_more_than_the_cap(
    sim: Simulator, http: aiohttp.ClientSession, token: str
) -> None:
    """One second holds cap + 1 products; its one-second window answers exactly cap of them."""
    bulk = sim.ctx.books.bulk_second
    assert bulk is not None
    full = expected_refs(sim, bulk, bulk + 1)
    assert len(full) == S.dbk_max_products + 1
    _, body, _ = await export(
        http, sim, token, updatedFrom=onix_time(bulk), updatedTo=onix_time(bulk + 1)
    )
    assert refs(body) == full[:-1]


async def test_from_inclusive_to_exclusive_at_a_datestamp(
    sim: Simulator, http: aiohttp.ClientSession, token: str
) -> None:
    """A product stamped exactly t is in [t, t+1) and [t, u), not in [t-60, t)."""
    books = sim.ctx.books
    p = next(
        p for p in range(1500, books.size - 1)
        if books.times[p - 1] < books.times[p] - 60 and books.times[p] < books.times[p + 1]
    )  # fmt: skip
    t, ref = books.times[p], books.record_reference(p)
    _, body, _ = await export(
        http, sim, token, updatedFrom=onix_time(t), updatedTo=onix_time(t + 1)
    )
    assert refs(body) == [ref]
    product = etree.fromstring(body).find(f"{{{ONIX_NS}}}Product")
    assert product is not None and product.get("datestamp") == onix_time(t)
    status, body, _ = await export(
        http, sim, token, updatedFrom=onix_time(t - 60), updatedTo=onix_time(t)
    )
    assert status == 204
    u = books.times[p + 50]
    _, body, _ = await export(http, sim, token, updatedFrom=onix_time(t), updatedTo=onix_time(u))
    assert refs(body) == expected_refs(sim, t, u)
    assert refs(body)[0] == ref and books.record_reference(p + 50) not in refs(body)


async def test_basic_and_extended_time_forms(
    sim: Simulator, http: aiohttp.ClientSession, token: str
) -> None:
    """Basic and extended ISO 8601 forms naming the same instants select the same products."""
    books = sim.ctx.books
    lo = books.times[1200] - books.times[1200] % 60
    hi = lo + 3 * 86400
    expected = expected_refs(sim, lo, hi)
    assert expected
    minus4 = timezone(-timedelta(hours=4))
    plus2 = timezone(timedelta(hours=2))

    def at(ts: int, tz: timezone, fmt: str) -> str:
        return datetime.fromtimestamp(ts, tz).strftime(fmt)

    forms = [
        (onix_time(lo), onix_time(hi)),  # 20250204T093000Z
        (at(lo, minus4, "%Y%m%dT%H%M-0400"), at(hi, minus4, "%Y%m%dT%H%M-0400")),
        (at(lo, UTC, "%Y-%m-%dT%H:%M:%S+00:00"), at(hi, plus2, "%Y-%m-%dT%H:%M:%S+02:00")),
        (at(lo, UTC, "%Y-%m-%dT%H:%M:%S"), at(hi, UTC, "%Y%m%dT%H%M%S")),  # no zone: UTC
        (at(lo, plus2, "%Y-%m-%dT%H:%M:%S.250+0200"), at(hi, UTC, "%Y-%m-%dT%H:%MZ")),
    ]
    for start, end in forms:
        status, body, _ = await export(http, sim, token, updatedFrom=start, updatedTo=end)
        assert (status, refs(body)) == (200, expected), (start, end)
    day = lo - lo % 86400
    by_day = expected_refs(sim, day, day + 86400)
    for start, end in (
        (at(day, UTC, "%Y%m%d"), at(day + 86400, UTC, "%Y%m%d")),
        (at(day, UTC, "%Y-%m-%d"), at(day + 86400, UTC, "%Y-%m-%d")),
    ):
        status, body, _ = await export(http, sim, token, updatedFrom=start, updatedTo=end)
        assert (status, refs(body)) == (200, by_day[: S.dbk_max_products])


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"updatedFrom": "yesterday"}, "not an ISO 8601 date/time: 'yesterday'"),
        ({"updatedTo": "20250230"}, "not a valid date/time: '20250230'"),
        ({"updatedFrom": "2025-02-04T25:00:00Z"}, "not a valid date/time: '2025-02-04T25:00:00Z'"),
        ({"publisher": "gyldendal"}, "publisher must be a DBK customer number"),
        ({"productIds": "123"}, "productIds must be 13-digit EAN numbers"),
    ],
)
async def test_bad_filters_are_400(
    sim: Simulator, http: aiohttp.ClientSession, token: str, params: dict[str, str], detail: str
) -> None:
    """A bad time, publisher or product id answers 400 problem+json naming it."""
    _, body, r = await export(http, sim, token, **params)
    problem = assert_problem(body, r, 400)
    assert (problem["title"], problem["detail"]) == ("Bad Request", detail)
    assert problem["type"] == "https://tools.ietf.org/html/rfc9110#section-15.5.1"


async def test_product_ids_filter(sim: Simulator, http: aiohttp.ClientSession, token: str) -> None:
    """productIds selects exactly the named products (GET list and POST array)."""
    books = sim.ctx.books
    wanted = [books.record_reference(p) for p in (10, 2000, 3400)]
    isbns = [r.removeprefix("dk.dbk.") for r in wanted]
    _, body, _ = await export(http, sim, token, productIds=",".join(reversed(isbns)))
    assert refs(body) == wanted
    _, body, _ = await export_post(http, sim, token, {"productIds": isbns})
    assert refs(body) == wanted


async def test_rate_limit_headers_in_dbk_letter_case(
    wall: Wall, http: aiohttp.ClientSession
) -> None:
    """DBK spells X-RateLimit-Limit/-Remaining/-Reset so; past the limit it answers 429."""
    s = SimSettings(nobb_items=0, dbk_products=50, rate_limit=2, rate_window=60)
    async with Simulator(s, clock=wall) as sim:
        async with http.post(sim.url + DBK_AUTH, json=CREDENTIALS) as r:
            token = (await r.json())["token"]
        seen = []
        for _ in range(3):
            status, body, r = await export(http, sim, token)
            names = [k for k, _ in r.raw_headers if k.lower().startswith(b"x-ratelimit")]
            assert names == [b"X-RateLimit-Limit", b"X-RateLimit-Remaining", b"X-RateLimit-Reset"]
            seen.append((status, *(r.headers[n.decode()] for n in names)))
    reset = str(1_790_000_040)  # T0 lies in the 60 s window [1_789_999_980, 1_790_000_040)
    assert seen == [(200, "2", "1", reset), (200, "2", "0", reset), (429, "2", "0", reset)]
    assert orjson.loads(body)["title"] == "Too Many Requests"
