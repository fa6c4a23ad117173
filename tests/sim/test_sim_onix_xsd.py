"""Every simulated DBK export message is valid ONIX 3.1 against EDItEUR's reference XSD."""

from __future__ import annotations

import itertools
import re
from importlib.resources import files

import aiohttp
import pytest
from lxml import etree

from harvester.sim.books import basic as onix_time
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.clocks import Wall
from tests.harness import DBK_AUTH, DBK_EXPORT, ONIX_NS, bearer

#: No bulk second (the default), so no window is capped.
S = SimSettings(nobb_items=0, dbk_products=2900, rate_limit=0, seed=8)
#: With the opt-in bulk second holding cap + 1 products.
S_BULK = SimSettings(
    nobb_items=0,
    dbk_products=3200,
    dbk_max_products=400,
    rate_limit=0,
    seed=8,
    dbk_bulk_second=True,
)
NS = f"{{{ONIX_NS}}}"


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    """onixcheck's bundled ONIX 3.1 reference-tag schema (with its code lists and XHTML subset)."""
    xsd = files("onixcheck").joinpath("schema", "xsd3.1", "ONIX_BookProduct_3.1_reference.xsd")
    with xsd.open("rb") as f:
        return etree.XMLSchema(etree.parse(f, base_url=str(xsd)))


async def messages(
    sim: Simulator, http: aiohttp.ClientSession, windows: list[tuple[int, int]], encoding: str
) -> list[bytes]:
    """The export documents for the given [start, end) windows (204s left out)."""
    body = {"username": sim.settings.username, "password": sim.settings.password}
    async with http.post(sim.url + DBK_AUTH, json=body) as r:
        headers = {**bearer((await r.json())["token"]), "Accept-Encoding": encoding}
    out = []
    for lo, hi in windows:
        params = {"updatedFrom": onix_time(lo), "updatedTo": onix_time(hi)}
        async with http.get(sim.url + DBK_EXPORT, params=params, headers=headers) as r:
            assert r.status in (200, 204)
            if r.status == 200:
                out.append(await r.read())
    return out


def validate(schema: etree.XMLSchema, body: bytes) -> etree._Element:
    doc = etree.fromstring(body)
    if not schema.validate(doc):
        raise AssertionError(str(schema.error_log))
    return doc


async def test_whole_catalogue_validates(
    schema: etree.XMLSchema, wall: Wall, http: aiohttp.ClientSession
) -> None:
    """Windows covering every product validate, deletions (05), XHTML Text and escapes included."""
    async with Simulator(S, clock=wall) as sim:
        times = sim.ctx.books.times
        edges = sorted({times[k] for k in range(0, S.dbk_products, 350)} | {times[-1] + 1})
        windows = list(itertools.pairwise(edges))
        bodies = await messages(sim, http, windows, "identity")
        bodies += await messages(sim, http, windows[:2], "gzip")
    assert len(bodies) == len(windows) + 2
    notification: set[str | None] = set()
    seen = 0
    escaped_title = xhtml = ampersand = False
    for body in bodies[: len(windows)]:
        doc = validate(schema, body)
        assert doc.get("release") == "3.1"
        found = doc.findall(f"{NS}Product")
        seen += len(found)
        notification |= {p.findtext(f"{NS}NotificationType") for p in found}
        xhtml |= doc.find(f".//{NS}Text[@textformat='05']/{NS}p") is not None
        escaped_title |= b"&lt;bind 1&gt;" in body
        ampersand |= b"&amp;" in body
    for body in bodies[len(windows) :]:
        validate(schema, body)
    assert seen == S.dbk_products
    assert notification == {"03", "04", "05"}
    assert xhtml and escaped_title and ampersand


async def test_edge_messages_validate(
    schema: etree.XMLSchema, wall: Wall, http: aiohttp.ClientSession
) -> None:
    """A one-product message and the capped bulk-second message are valid; a broken one is not."""
    async with Simulator(S_BULK, clock=wall) as sim:
        books = sim.ctx.books
        bulk = books.bulk_second
        assert bulk is not None
        t = books.times[100]
        bodies = await messages(sim, http, [(t, t + 1), (bulk, bulk + 1)], "br")
    one, capped = (validate(schema, b) for b in bodies)
    # The schema is strict enough to matter: an unknown code list value fails it.
    broken = re.sub(rb"<NotificationType>0\d<", b"<NotificationType>99<", bodies[0], count=1)
    assert not schema.validate(etree.fromstring(broken))
    assert len(one.findall(f"{NS}Product")) == len(books.window(t, t + 1)) >= 1
    assert len(capped.findall(f"{NS}Product")) == S_BULK.dbk_max_products
