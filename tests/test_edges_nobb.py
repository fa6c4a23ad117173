"""NOBB dumps and syncs exact under every reading of from / to, with the client's defaults.

The catalogue is packed into 60 days, every day holding items and some days hundreds, so every
partition boundary the planner picks has items on both of its days, dense days among them. The
client is never told the reading.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from harvester.output import read_lines, verify_run
from harvester.run import RunResult
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.base import Mode
from harvester.sources.nobb import NobbSource
from tests.clocks import JumpClock
from tests.front import Front, Upstream
from tests.harness import harvest, nobb_config

DUMP_AT = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
SYNC_AT = DUMP_AT + 3 * 86400
TODAY = date(2026, 9, 21)
FIRST = TODAY - timedelta(days=90)
READINGS = [(False, False), (True, False), (False, True), (True, True)]
IDS = ["default", "from-exclusive", "to-exclusive", "both-exclusive"]
_EPOCH = date(1970, 1, 1)


def _layout(n: int) -> list[int]:
    """Change days (since 1970) for ``n`` items: every one of 60 days used, five days dense."""
    rng = random.Random(14)
    first = (FIRST - _EPOCH).days
    days = [first + i % 60 for i in range(60)]
    dense = [first + d for d in (0, 17, 18, 40, 59)]
    days += [rng.choice(dense) if rng.random() < 0.5 else first + rng.randrange(60)
             for _ in range(n - 70)]  # fmt: skip
    days += [(TODAY - _EPOCH).days - 1] * 10  # the day before the dump's start day
    rng.shuffle(days)
    return days


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
        "page_size": 100, "concurrency": 4, "partitions": 6, "sync_overlap_days": 0,
        # JumpClock skips every sleep (the checkpoint timer's too), so the probes' page times it
        # measures say nothing: keep the walk budget from cutting the partitions these tests plan.
        "token_ttl": 1e9, "walk_max_seconds": 1e9 - 1,
    }  # fmt: skip
    cfg = nobb_config(sim.url, **{**base, **kw})
    return await harvest(NobbSource(cfg, clock=clock), out, mode=mode, clock=clock, resume=resume)


def _keys(result: RunResult) -> list[int]:
    verify_run(result.run_dir)
    return [orjson.loads(line)["nobbNumber"] for line in read_lines(result.run_dir)]


@pytest.mark.parametrize(("from_exclusive", "to_exclusive"), READINGS, ids=IDS)
async def test_dump_and_sync_are_exact_under_each_reading(
    tmp_path: Path, from_exclusive: bool, to_exclusive: bool
) -> None:
    """Every item once in the dump, every change (some on the sync's start day) in the sync."""
    settings = SimSettings(nobb_items=1500, rate_limit=0, seed=4,
                           nobb_from_exclusive=from_exclusive,
                           nobb_to_exclusive=to_exclusive)  # fmt: skip
    clock = JumpClock(offset=DUMP_AT - JumpClock().time())
    async with Simulator(settings, clock=clock.time) as sim:
        cat = sim.ctx.nobb
        for pos, day in enumerate(_layout(cat.size)):
            cat.modified[pos] = day
        sim.ctx.nobb_generation += 1
        dump = await _run(sim, tmp_path, "dump", clock)
        keys = _keys(dump)
        assert dump.manifest.complete and dump.exit_code == 0
        assert len(keys) == len(set(keys)) == cat.size
        assert set(keys) == set(cat.keys)
        checks = dump.manifest.checks
        bounds = [
            date.fromisoformat(p.partition("..")[2])
            for p in dump.manifest.partitions
            if not p.startswith(("edge:", "catch-up:")) and not p.endswith("..end")
        ]
        # At least two boundaries, each with items on its days and the day after.
        assert len(bounds) >= 2 and all(FIRST <= x < FIRST + timedelta(days=59) for x in bounds)
        assert "unaccounted" not in checks
        assert checks.get("replaced_by_newer_version", 0) == 0  # nothing changed meanwhile
        edges = checks["edges"]
        assert isinstance(edges, dict)
        if (from_exclusive, to_exclusive) == (False, False):
            assert edges["from"] == edges["to"] == "inclusive (measured)"
            assert edges["boundary_fills"] == 0 and checks["difference"] == 0
        else:
            assert edges["boundary_fills"] == len(bounds)
        # Changes between the runs: on the dump's start day (its high-water mark) and on the
        # sync's start day, before the sync starts.
        moved = random.Random(15).sample(list(cat.keys), 120)
        for i, key in enumerate(moved):
            cat.touch(key, TODAY if i % 2 else TODAY + timedelta(days=3))
        sim.ctx.nobb_generation += 1
        clock.offset += SYNC_AT - clock.time()
        sync = await _run(sim, tmp_path, "sync", clock)
    assert sync.manifest.complete and sync.exit_code == 0
    got = _keys(sync)
    assert len(got) == len(set(got)) and set(got) == set(moved)
    state = orjson.loads((tmp_path / "nobb" / "state.json").read_bytes())
    assert state["high_water"] == (TODAY + timedelta(days=3)).isoformat()


async def test_a_planning_total_the_dump_cannot_account_for_is_named(tmp_path: Path) -> None:
    """Items the catalogue's x-totalHits counted but no walk served: named, never silent."""

    async def spoil(request: web.Request, up: Upstream) -> web.StreamResponse | None:
        q = request.query
        if "from" in q or "to" in q or "pageToken" in q or q.get("pageSize") != "1":
            return None
        headers = {**up.headers, "x-totalHits": str(int(up.headers["x-totalHits"]) + 7)}
        return web.Response(status=up.status, body=up.body, headers=headers)

    settings = SimSettings(nobb_items=800, rate_limit=0, seed=9)
    clock = JumpClock(offset=DUMP_AT - JumpClock().time())
    async with Simulator(settings, clock=clock.time) as sim, Front(sim, spoil) as front:
        cfg = nobb_config(front.url, page_size=100)
        result = await harvest(NobbSource(cfg, clock=clock), tmp_path, clock=clock)
    checks = result.manifest.checks
    assert front.spoiled and result.manifest.records == 800
    assert checks["planned_total"] == 807 and checks["unaccounted"] == 7
    assert "7 items of the catalogue's x-totalHits at planning were not written" in str(
        checks["note"]
    )
    assert "7 records unaccounted" in result.summary_line()


@pytest.mark.parametrize(("from_exclusive", "to_exclusive"), READINGS, ids=IDS)
async def test_a_resumed_dump_is_exact_under_each_reading(
    tmp_path: Path, from_exclusive: bool, to_exclusive: bool
) -> None:
    """Walks of the later partitions fail (500) the first time; --resume finishes them exactly."""
    settings = SimSettings(nobb_items=1500, rate_limit=0, seed=4,
                           nobb_from_exclusive=from_exclusive,
                           nobb_to_exclusive=to_exclusive)  # fmt: skip
    failing = [True]

    async def spoil(request: web.Request, up: Upstream) -> web.StreamResponse | None:
        day = request.query.get("from")
        late = day is not None and date.fromisoformat(day) >= FIRST + timedelta(days=20)
        if failing[0] and late and "sortOrder" in request.query:
            return web.Response(status=500, text="simulated outage")
        return None

    clock = JumpClock(offset=DUMP_AT - JumpClock().time())
    async with Simulator(settings, clock=clock.time) as sim, Front(sim, spoil) as front:
        cat = sim.ctx.nobb
        for pos, day in enumerate(_layout(cat.size)):
            cat.modified[pos] = day
        sim.ctx.nobb_generation += 1
        first = await _run(sim, tmp_path, "dump", clock, base_url=front.url, retries=1)
        assert not first.manifest.complete and first.failed and front.spoiled
        failing[0] = False
        again = await _run(sim, tmp_path, "dump", clock, base_url=front.url, resume=True)
    assert again.run_dir == first.run_dir and again.manifest.complete
    keys = _keys(again)
    assert len(keys) == len(set(keys)) == cat.size and set(keys) == set(cat.keys)


async def test_a_catch_up_asked_a_day_early_takes_nothing_for_a_newer_version(
    tmp_path: Path,
) -> None:
    """One open partition proves no end: the catch-up re-meets yesterday's items unchanged."""
    settings = SimSettings(nobb_items=600, rate_limit=0, seed=4)
    clock = JumpClock(offset=DUMP_AT - JumpClock().time())
    async with Simulator(settings, clock=clock.time) as sim:
        cat = sim.ctx.nobb
        for pos, day in enumerate(_layout(cat.size)):
            cat.modified[pos] = day
        sim.ctx.nobb_generation += 1
        dump = await _run(sim, tmp_path, "dump", clock, partitions=1)
    checks = dump.manifest.checks
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    assert f"catch-up:{yesterday}..end" in dump.manifest.partitions
    assert dump.manifest.complete and checks.get("replaced_by_newer_version", 0) == 0
    assert sorted(_keys(dump)) == sorted(cat.keys)
