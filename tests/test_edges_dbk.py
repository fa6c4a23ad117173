"""DBK dumps and syncs exact under every reading of updatedFrom / updatedTo, client defaults.

The catalogue is packed into a few minutes, every second holding products, so every window edge
the planner picks has products exactly on it; some seconds hold nearly a response's cap, side by
side, so an overlap second at an edge is itself dense. The client is never told the reading.
"""

from __future__ import annotations

import random
from array import array
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from harvester.output import read_lines, verify_run
from harvester.plan.edges import SecondEdges
from harvester.run import RunResult
from harvester.sim.books import PUBLISHERS, BookCatalogue, isbn13
from harvester.sim.dbk import parse_time
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.base import Mode
from harvester.sources.dbk import DbkSource
from tests.clocks import JumpClock
from tests.front import Front, Upstream
from tests.harness import dbk_config, harvest

CAP = 60
DUMP_AT = 1_790_000_000.4  # the dump starts 0.4 s into a second
SYNC_AT = DUMP_AT + 900.3  # the sync starts 0.7 s into its second
BASE = int(DUMP_AT) - 7200
READINGS = [(False, False), (True, False), (False, True), (True, True)]
IDS = ["default", "from-exclusive", "to-inclusive", "from-exclusive+to-inclusive"]


def _layout() -> list[int]:
    """Update times: 1-4 products in each of 300 seconds, dense seconds at edges and in pairs."""
    rng = random.Random(14)
    times = [BASE + s for s in range(300) for _ in range(rng.randint(1, 4))]
    dense = {0: 50, 100: 45, 101: 45, 200: CAP - 5, 250: 40, 251: 40, 252: 40}
    for offset, n in dense.items():
        times += [BASE + offset] * n
    times += [int(DUMP_AT) - 1] * 50  # the dump's last second before its start, dense
    return times


def _place(books: BookCatalogue, times: list[int]) -> None:
    """Give the product of serial ``i`` the update time ``times[i]``."""
    assert len(times) == books.size
    order = sorted(range(books.size), key=lambda i: (times[i], i))
    books.times = array("q", (times[i] for i in order))
    books.serial = array("i", order)
    books.publisher = array("i", (PUBLISHERS[s % len(PUBLISHERS)] for s in order))
    books._by_isbn = {isbn13(s): p for p, s in enumerate(order)}


async def _run(
    sim: Simulator,
    out: Path,
    mode: Mode,
    clock: JumpClock,
    *,
    resume: bool = False,
    **kw: object,
) -> RunResult:
    base: dict[str, object] = {
        "concurrency": 4, "workers": 0, "max_products_per_response": CAP,
        "start": datetime.fromtimestamp(BASE, UTC), "sync_overlap_days": 0,
    }  # fmt: skip
    cfg = dbk_config(sim.url, **{**base, **kw})
    return await harvest(DbkSource(cfg, clock=clock), out, mode=mode, clock=clock, resume=resume)


def _refs(result: RunResult) -> list[str]:
    verify_run(result.run_dir)
    return [orjson.loads(line)["record_reference"] for line in read_lines(result.run_dir)]


@pytest.mark.parametrize(("from_exclusive", "to_inclusive"), READINGS, ids=IDS)
async def test_dump_and_sync_are_exact_under_each_reading(
    tmp_path: Path, from_exclusive: bool, to_inclusive: bool
) -> None:
    """Every product once in the dump, every change (one in the sync's start second) in the sync."""
    times = _layout()
    settings = SimSettings(dbk_products=len(times), dbk_max_products=CAP, rate_limit=0,
                           dbk_bulk_second=False, dbk_from_exclusive=from_exclusive,
                           dbk_to_inclusive=to_inclusive)  # fmt: skip
    clock = JumpClock(offset=DUMP_AT - JumpClock().time())
    async with Simulator(settings, clock=clock.time) as sim:
        books = sim.ctx.books
        _place(books, times)
        dump = await _run(sim, tmp_path, "dump", clock)
        refs = _refs(dump)
        assert dump.manifest.complete and dump.exit_code == 0
        assert len(refs) == len(set(refs)) == books.size
        assert set(refs) == {books.record_reference(p) for p in range(books.size)}
        edges = dump.manifest.checks["edges"]
        assert isinstance(edges, dict)
        if not from_exclusive:
            assert edges["updatedFrom"] == "inclusive (measured)"
        if to_inclusive:
            assert edges["updatedTo"] == "inclusive (measured)"
        # Changes between the runs: on the dump's start second (its high-water mark), a dense
        # second, and the very second the sync starts (before it starts).
        high = int(DUMP_AT)
        assert orjson.loads((tmp_path / "dbk" / "state.json").read_bytes())["high_water"] == (
            datetime.fromtimestamp(high, UTC).isoformat()
        )
        moved = {}
        serials = random.Random(15).sample(range(books.size), 90)
        for i, serial in enumerate(serials):
            ref = f"dk.dbk.{isbn13(serial)}"
            when = (high, high + 1, int(SYNC_AT))[i % 3] if i < 40 else high + 300
            books.touch(ref, when)
            moved[ref] = when
        clock.offset += SYNC_AT - clock.time()
        sync = await _run(sim, tmp_path, "sync", clock)
        state = orjson.loads((tmp_path / "dbk" / "state.json").read_bytes())
        # A dump planned from the windows the earlier runs learned is exact too.
        again = await _run(sim, tmp_path, "dump", clock)
    assert sync.manifest.complete and sync.exit_code == 0
    got = _refs(sync)
    assert len(got) == len(set(got)) and set(got) == set(moved)
    assert state["high_water"] == datetime.fromtimestamp(int(SYNC_AT), UTC).isoformat()
    assert state["windows"] and again.manifest.complete
    refs = _refs(again)
    assert len(refs) == len(set(refs)) == books.size


def test_second_edges_learn_only_from_proof() -> None:
    """A stamp at the edge sent proves it inclusive; whole minutes prove nothing until seconds."""
    rule = SecondEdges()
    assert rule.bounds(121, 200) == (120, 200)
    assert not rule.observe((120, 200), [120], seconds=False)  # 120 is on a whole minute
    assert rule.bounds(100, 200) == (99, 200)
    assert rule.observe((120, 200), [120], seconds=True)
    assert rule.bounds(100, 200) == (100, 200)
    assert rule.observe((100, 200), [200], seconds=True)
    assert rule.bounds(100, 200) == (100, 199)
    fixed = SecondEdges(True, False, fixed=True)
    assert not fixed.observe((100, 200), [200], seconds=True) and fixed.bounds(1, 2) == (1, 2)


@pytest.mark.parametrize(("from_exclusive", "to_inclusive"), READINGS, ids=IDS)
async def test_a_dense_overlap_second_never_makes_a_window_unsplittable(
    tmp_path: Path, from_exclusive: bool, to_inclusive: bool
) -> None:
    """Two adjacent seconds of 40 products each (cap 60) and nothing else: complete, exact."""
    dense = BASE + 1000
    times = [dense] * 40 + [dense + 1] * 40
    settings = SimSettings(dbk_products=len(times), dbk_max_products=CAP, rate_limit=0,
                           dbk_bulk_second=False, dbk_from_exclusive=from_exclusive,
                           dbk_to_inclusive=to_inclusive)  # fmt: skip
    clock = JumpClock(offset=DUMP_AT - JumpClock().time())
    async with Simulator(settings, clock=clock.time) as sim:
        _place(sim.ctx.books, times)
        dump = await _run(sim, tmp_path, "dump", clock)
        books = sim.ctx.books
    assert dump.manifest.complete and dump.manifest.checks["unsplittable"] == []
    refs = _refs(dump)
    assert len(refs) == len(set(refs)) == 80
    assert set(refs) == {books.record_reference(p) for p in range(80)}


@pytest.mark.parametrize(("from_exclusive", "to_inclusive"), READINGS, ids=IDS)
async def test_a_resumed_dump_is_exact_under_each_reading(
    tmp_path: Path, from_exclusive: bool, to_inclusive: bool
) -> None:
    """Windows from the middle on fail (500) the first time; --resume asks only them, exactly."""
    times = _layout()
    settings = SimSettings(dbk_products=len(times), dbk_max_products=CAP, rate_limit=0,
                           dbk_bulk_second=False, dbk_from_exclusive=from_exclusive,
                           dbk_to_inclusive=to_inclusive)  # fmt: skip
    failing = [True]

    async def spoil(request: web.Request, up: Upstream) -> web.StreamResponse | None:
        start = request.query.get("updatedFrom")
        if failing[0] and start is not None and parse_time(start) >= BASE + 150:
            return web.Response(status=500, text="simulated outage")
        return None

    clock = JumpClock(offset=DUMP_AT - JumpClock().time())
    async with Simulator(settings, clock=clock.time) as sim, Front(sim, spoil) as front:
        books = sim.ctx.books
        _place(books, times)
        first = await _run(sim, tmp_path, "dump", clock, base_url=front.url, retries=1)
        assert not first.manifest.complete and first.failed and front.spoiled
        failing[0] = False
        again = await _run(sim, tmp_path, "dump", clock, base_url=front.url, resume=True)
    assert again.run_dir == first.run_dir and again.manifest.complete
    refs = _refs(again)
    assert len(refs) == len(set(refs)) == books.size
    assert set(refs) == {books.record_reference(p) for p in range(books.size)}
