"""The simulator serves each reading of the window ends: DBK seconds and NOBB days, by flag."""

from __future__ import annotations

from datetime import date, timedelta

import aiohttp
import orjson
import pytest

from harvester.parse.onix import product_times
from harvester.plan.windows import stamp
from harvester.sim.cli import add_arguments, settings_from
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.clocks import Wall
from tests.harness import DBK_AUTH, DBK_EXPORT, NOBB, basic_auth, bearer

READINGS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize(("from_exclusive", "to_inclusive"), READINGS)
async def test_dbk_window_ends_follow_the_reading(
    http: aiohttp.ClientSession, from_exclusive: bool, to_inclusive: bool
) -> None:
    """updatedFrom=t, updatedTo=t+2 holds t (unless from is exclusive), t+1, t+2 if to inclusive."""
    settings = SimSettings(dbk_products=400, rate_limit=0, dbk_bulk_second=False,
                           dbk_from_exclusive=from_exclusive,
                           dbk_to_inclusive=to_inclusive)  # fmt: skip
    async with Simulator(settings, clock=Wall()) as sim:
        books = sim.ctx.books
        t = books.times[200]
        for p in (199, 201, 202):  # t, t+1 and t+2 each hold products
            books.touch(books.record_reference(p), t + {199: 0, 201: 1, 202: 2}[p])
        async with http.post(sim.url + DBK_AUTH, json={"username": "harvester",
                                                       "password": "harvester"}) as r:  # fmt: skip
            token = (await r.json())["token"]
        params = {"updatedFrom": stamp(t), "updatedTo": stamp(t + 2)}
        async with http.get(sim.url + DBK_EXPORT, params=params, headers=bearer(token)) as r:
            got = set(product_times(await r.read()))
    want = {t + 1} | ({t} if not from_exclusive else set()) | ({t + 2} if to_inclusive else set())
    assert got == want


@pytest.mark.parametrize(("from_exclusive", "to_exclusive"), READINGS)
async def test_nobb_day_ends_follow_the_reading(
    http: aiohttp.ClientSession, from_exclusive: bool, to_exclusive: bool
) -> None:
    """from=d, to=d+2 holds day d (unless exclusive), d+1, and d+2 (unless exclusive)."""
    settings = SimSettings(nobb_items=300, rate_limit=0, nobb_from_exclusive=from_exclusive,
                           nobb_to_exclusive=to_exclusive)  # fmt: skip
    day = date(2024, 3, 1)
    async with Simulator(settings, clock=Wall()) as sim:
        cat = sim.ctx.nobb
        for i, key in enumerate(cat.keys[:30]):
            cat.touch(key, day + timedelta(days=i % 5 - 1))  # days d-1 .. d+3
        sim.ctx.nobb_generation += 1
        params = {"from": day.isoformat(), "to": (day + timedelta(days=2)).isoformat(),
                  "pageSize": "1000"}  # fmt: skip
        async with http.get(sim.url + NOBB, params=params, headers=basic_auth(settings)) as r:
            items = orjson.loads(await r.read())
    got = {date.fromisoformat(i["status"]["lastModifiedDate"][:10]) for i in items}
    want = {day + timedelta(days=1)}
    want |= set() if from_exclusive else {day}
    want |= set() if to_exclusive else {day + timedelta(days=2)}
    assert got == want


def test_reading_flags_set_the_settings() -> None:
    """The four reading flags reach SimSettings; without them every default is unchanged."""
    import argparse

    p = argparse.ArgumentParser()
    add_arguments(p)
    flags = ["--dbk-from-exclusive", "--dbk-to-inclusive", "--nobb-from-exclusive",
             "--nobb-to-exclusive"]  # fmt: skip
    s = settings_from(p.parse_args(flags))
    assert (s.dbk_from_exclusive, s.dbk_to_inclusive, s.nobb_from_exclusive,
            s.nobb_to_exclusive) == (True, True, True, True)  # fmt: skip
    assert settings_from(p.parse_args([])) == SimSettings()
