"""Faults end to end: passing faults heal to the exact records; a permanent one is named, resumed.

The simulator's fault profiles fail only first attempts, so a harvester that retries must end
complete with exactly the clean records, whatever the seed. ``fail_matching`` is a fault that
never heals: its partition fails, the run exits 1 naming it, and a ``--resume`` once the fault
is gone completes the same run with exactly the clean records. Backoff sleeps run on a
``JumpClock`` (skipped, not waited).
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from harvester.config import OutputConfig
from harvester.output import read_lines
from harvester.run import RunResult
from harvester.sim.books import BookCatalogue
from harvester.sim.server import Simulator
from harvester.sim.settings import FaultProfile, SimSettings
from harvester.sources.nobb import NobbSource
from tests.clocks import JumpClock
from tests.expected import expected_dbk, served_nobb, written_dbk, written_nobb
from tests.harness import (
    DBK_AUTH,
    DBK_EXPORT,
    NOBB,
    basic_auth,
    cli,
    harvest,
    run_dbk,
    sim_nobb_config,
    simulate,
)

SEEDS = [101, 202, 303]


async def _nobb(
    sim: Simulator, out: Path, clock: JumpClock | None = None, **kw: object
) -> RunResult:
    clock = clock or JumpClock()
    source = NobbSource(sim_nobb_config(sim, **kw), clock=clock)
    return await harvest(source, out, output=OutputConfig(shard_max_records=400), clock=clock)


def _at_noon() -> JumpClock:
    """Real time moved to today's noon (UTC): runs a few seconds apart plan the same days even
    when the real clock crosses midnight between them."""
    now = time.time()
    return JumpClock(shift=now // 86400 * 86400 + 43200 - now)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("profile", ["flaky", "hostile"])
async def test_nobb_faults_heal_to_the_clean_records(
    tmp_path: Path, profile: FaultProfile, seed: int
) -> None:
    """NOBB under flaky/hostile faults, several seeds: exit 0, every item once, bytes as served."""
    settings = SimSettings(nobb_items=1500, rate_limit=0, seed=seed, faults=profile)
    async with Simulator(settings) as sim:
        result = await _nobb(sim, tmp_path, page_size=25, retries=4)
        injected = sum(sim.ctx.faults.injected.values())
    async with Simulator(dataclasses.replace(settings, faults="none")) as clean:
        served = await served_nobb(clean, settings)
    assert injected > 0
    assert result.exit_code == 0 and result.manifest.complete
    assert written_nobb(result.run_dir) == served


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("profile", ["flaky", "hostile"])
async def test_dbk_faults_heal_to_the_clean_records(
    tmp_path: Path, profile: FaultProfile, seed: int
) -> None:
    """DBK under flaky/hostile faults, several seeds: exit 0, every product once, as converted."""
    settings = SimSettings(dbk_products=1000, dbk_max_products=40, rate_limit=0, seed=seed,
                           faults=profile)  # fmt: skip
    async with Simulator(settings) as sim:
        result = await run_dbk(sim, tmp_path, clock=JumpClock(), retries=4)
        injected = sum(sim.ctx.faults.injected.values())
        books = sim.ctx.books
    assert injected > 0
    assert result.exit_code == 0 and result.manifest.complete
    assert written_dbk(result) == expected_dbk(books, range(books.size))


def _config(tmp: Path, url: str, section: str, extra: str = "") -> Path:
    cfg = tmp / f"{section}.toml"
    cfg.write_text(
        f'[output]\ndir = "{tmp / "out"}"\nshard_max_records = 400\n'
        f'[{section}]\nbase_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
        f'rate_limit = "0"\nretries = 2\n{extra}'
    )
    return cfg


async def test_nobb_permanent_fault_then_resume(tmp_path: Path) -> None:
    """One NOBB partition always 500s: exit 1 naming it; --resume without the fault is exact."""
    settings = SimSettings(nobb_items=1500, rate_limit=0, seed=7)
    async with Simulator(settings) as sim:
        served = await served_nobb(sim, settings)
        clock = _at_noon()  # the plan below must be the dump's: both read the same day
        plan = await _nobb(sim, tmp_path / "plan", clock, page_size=50, partitions=4)
        # The biggest partition with both bounds; its pages after the first fail, both ends.
        hits: dict[str, Any] = dict(plan.manifest.partitions)
        pid = max((p for p in hits if "start" not in p and "end" not in p),
                  key=lambda p: int(hits[p]["total_hits"]))  # fmt: skip
        lo, hi = pid.split("..")
        failing = f"&from={lo}&to={hi}&pageToken="
        sim.ctx.settings = dataclasses.replace(settings, fail_matching=failing)
        # The plan's own concurrency (its probes per level), so the dump plans the same days.
        cfg = _config(
            tmp_path, sim.url, "nobb", "page_size = 50\npartitions = 4\nconcurrency = 4\n"
        )
        summary = tmp_path / "summary.json"
        code, _, err = await cli(
            "dump", "nobb", "--config", str(cfg), "--summary-json", str(summary), clock=clock
        )
        assert sim.stats["permanent_faults"] >= 2
        sim.ctx.settings = settings
        (run_dir,) = (tmp_path / "out" / "nobb").glob("2*")
        manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
        resumed, _, err2 = await cli("dump", "nobb", "--config", str(cfg), "--resume", clock=clock)
    assert code == 1, err
    assert "nobb dump: INCOMPLETE (1 partition failed)" in err
    assert manifest["complete"] is False
    failure = manifest["partitions"][pid]
    assert failure["ok"] is False
    assert failure["error"] in {
        f"HTTP 500: Internal server error [nobb partition {pid} ({d}) GET /api/v2/items {pid}]"
        for d in ("asc", "desc")
    }
    assert [p for p, r in manifest["partitions"].items() if not r["ok"]] == [pid]
    assert orjson.loads(summary.read_bytes())["sources"][0]["failed_partitions"] == [pid]
    assert resumed == 0, err2
    assert list((tmp_path / "out" / "nobb").glob("2*")) == [run_dir]
    assert written_nobb(run_dir) == served


def _simulate(*flags: str, port: int | str = 0) -> tuple[subprocess.Popen[str], str]:
    catalogue = ("--nobb-items", "10", "--dbk-products", "1200", "--dbk-max-products", "150")
    return simulate(*catalogue, "--rate-limit", "0", "--seed", "8", *flags, port=port)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert proc.stdout is not None
    proc.stdout.close()


async def test_dbk_permanent_fault_then_resume(tmp_path: Path) -> None:
    """`simulate --fail-matching` fails the first DBK window: exit 1 names it, --resume is exact."""
    first = "updatedFrom=19991231T235959%2B0000"  # dbk.start a second early (edges.py)
    sim, url = _simulate("--fail-matching", first)
    try:
        cfg = _config(tmp_path, url, "dbk", "workers = 0\nmax_products_per_response = 150\n")
        code, _, err = await cli("dump", "dbk", "--config", str(cfg))
    finally:
        _stop(sim)
    (run_dir,) = (tmp_path / "out" / "dbk").glob("2*")
    manifest = orjson.loads((run_dir / "manifest.json").read_bytes())
    # The fault is gone: the same simulator on the same port, without --fail-matching.
    sim, url2 = _simulate(port=url.rsplit(":", 1)[1])
    try:
        assert url2 == url
        resumed, _, err2 = await cli("dump", "dbk", "--config", str(cfg), "--resume")
    finally:
        _stop(sim)
    assert code == 1, err
    assert "dbk dump: INCOMPLETE (1 partition failed)" in err
    failed = [p for p, r in manifest["partitions"].items() if not r["ok"]]
    assert len(failed) == 1 and failed[0].startswith("20000101T000000Z..")
    assert manifest["complete"] is False
    assert manifest["partitions"][failed[0]]["error"] == (
        f"HTTP 500: Server error [dbk window {failed[0]}]"
    )
    assert manifest["records"] < 1200  # the failed window held products
    assert resumed == 0, err2
    assert list((tmp_path / "out" / "dbk").glob("2*")) == [run_dir]
    lines = list(read_lines(run_dir))
    keys = [orjson.loads(line)["record_reference"] for line in lines]
    assert len(keys) == len(set(keys)), "a product was written twice"
    books = BookCatalogue(1200, 8, cap=150)
    assert dict(zip(keys, lines, strict=True)) == expected_dbk(books, range(books.size))


async def test_fail_matching_is_permanent_and_only_where_it_matches() -> None:
    """fail_matching: 500 on every attempt of a matching NOBB query or DBK body, 200 elsewhere."""
    settings = SimSettings(nobb_items=50, dbk_products=50, rate_limit=0,
                           fail_matching="2026")  # fmt: skip
    async with Simulator(settings) as sim, aiohttp.ClientSession() as http:
        nobb = sim.url + NOBB
        statuses = []
        for _ in range(3):
            async with http.get(
                nobb, params={"from": "2026-01-01"}, headers=basic_auth(settings)
            ) as r:
                statuses.append(r.status)
        async with http.get(nobb, params={"from": "2025-01-01"}, headers=basic_auth(settings)) as r:
            statuses.append(r.status)
        login = {"username": "harvester", "password": "harvester"}
        async with http.post(sim.url + DBK_AUTH, json=login) as r:
            auth = {"Authorization": "Bearer " + (await r.json())["token"]}
        export = sim.url + DBK_EXPORT
        late, early = {"updatedFrom": "20260101T000000Z"}, {"updatedTo": "20250101T000000Z"}
        for body in (late, late, early):
            async with http.post(export, json=body, headers=auth) as r:
                statuses.append(r.status)
    assert statuses == [500, 500, 500, 200, 500, 500, 200]
    assert sim.stats["permanent_faults"] == 5
