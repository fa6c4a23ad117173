"""NOBB walks longer than their tokens' life are cut by change date, not given up: exact dumps.

The simulator's and the client's clocks here are one ``PagedClock`` (tests/clocks.py): time
passes only as the simulator serves requests (a fixed share of a second each), so token ages,
page times and cuts are the same on any machine, however loaded, and no test sleeps.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from harvester.config import OutputConfig
from harvester.errors import Interrupted
from harvester.output import read_lines, verify_run
from harvester.run import RunResult
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.base import Mode
from harvester.sources.nobb import NobbSource
from harvester.store.checkpoint import Checkpoint
from tests.clocks import PagedClock
from tests.harness import harvest, nobb_config


async def _simulator(settings: SimSettings, clock: PagedClock) -> Simulator:
    sim = Simulator(settings, clock=clock.time)
    clock.sim = sim
    return sim


async def _run(
    mode: Mode, sim: Simulator, out: Path, clock: PagedClock, *, resume: bool = False, **kw: object
) -> RunResult:
    cfg = nobb_config(sim.url, **{"page_size": 50, "concurrency": 4, "retries": 2, **kw})
    output = OutputConfig(shard_max_records=2000)
    source = NobbSource(cfg, clock=clock)
    return await harvest(source, out, mode=mode, output=output, resume=resume, clock=clock)


def _served(sim: Simulator) -> dict[int, bytes]:
    """Every item as the simulator serves it (compact JSON, as a dump writes it)."""
    cat = sim.ctx.nobb
    return {cat.keys[p]: orjson.dumps(orjson.loads(cat.render(p))) for p in range(cat.size)}


def _exact(result: RunResult, served: dict[int, bytes]) -> None:
    verify_run(result.run_dir)
    lines = list(read_lines(result.run_dir))
    keys = [orjson.loads(line)["nobbNumber"] for line in lines]
    assert len(keys) == len(set(keys)), "an item was written twice"
    assert dict(zip(keys, lines, strict=True)) == served


def _cut(result: RunResult) -> list[str]:
    return [p for p, r in result.manifest.partitions.items()
            if isinstance(r, dict) and r.get("split_into")]  # fmt: skip


@pytest.mark.parametrize("seed", [5, 8])
async def test_tokens_living_2s_with_250ms_pages_dump_exact(tmp_path: Path, seed: int) -> None:
    """The reported case: tokens live 2 s, 4 walks at 250 ms a page, 50 items a page, 12,000
    items (240 pages, 15 s of walking): cut by change date, the dump ends exact and complete."""
    clock = PagedClock(per_request=0.25 / 4)  # four requests in flight: 250 ms each
    settings = SimSettings(nobb_items=12_000, rate_limit=0, seed=seed, token_ttl=2)
    async with await _simulator(settings, clock) as sim:
        result = await _run("dump", sim, tmp_path, clock)
        expired, requests = sim.stats["expired_tokens"], sim.stats["nobb_requests"]
        served = _served(sim)
    assert expired >= 1  # tokens did die: the cuts were learned from that
    assert result.exit_code == 0 and result.manifest.complete and not result.failed
    _exact(result, served)
    assert _cut(result)
    checks = result.manifest.checks
    assert checks["x_totalHits_sum"] == checks["written"] == 12_000
    for pid, r in result.manifest.partitions.items():
        assert isinstance(r, dict) and r["ok"], pid
    # The learned life is an upper bound: never below the tokens' 2 s, so no runaway of cuts.
    tokens = checks["tokens"]
    assert isinstance(tokens, dict) and tokens["expired"] == expired
    assert isinstance(tokens["life_at_most"], float) and tokens["life_at_most"] >= 2
    # Cuts re-read some pages and probe: well under three times the 240 pages one pass takes.
    assert requests < 3 * 240


async def test_walk_max_seconds_cuts_before_tokens_die(tmp_path: Path) -> None:
    """A server whose tokens outlive every walk: walks are still kept under walk_max_seconds,
    planned (probe time) and running (cut at the cap, or let end with their last pages but
    never past token_ttl), so no token ever dies."""
    clock = PagedClock(per_request=0.25 / 4)
    settings = SimSettings(nobb_items=6000, rate_limit=0, seed=6, token_ttl=7200)
    async with await _simulator(settings, clock) as sim:
        # The partition and request counts below assume 250 ms a page on this clock, which holds
        # when the 4 chains' bodies arrive compressed, in one read each; identity bodies (what
        # "auto" offers to loopback) stream in many reads, so one chain's pages can charge less.
        result = await _run("dump", sim, tmp_path, clock, walk_max_seconds=1.5, token_ttl=2,
                            accept_encoding="gzip, br;q=0.5")  # fmt: skip
        expired, requests = sim.stats["expired_tokens"], sim.stats["nobb_requests"]
        oldest_ms = sim.stats["nobb_oldest_token_ms"]
        served = _served(sim)
    assert expired == 0
    assert result.exit_code == 0 and result.manifest.complete
    _exact(result, served)
    # No token was carried past the 2 s token_ttl the client was given, on the clock client and
    # server share (a page count would stand in for it only while every page takes 250 ms).
    assert 0 < oldest_ms <= 2000
    # Planned: probes in fours take 250 ms, so a 1.5 s walk has 6 pages: 480 items a partition
    # at 2 ends x 50 x 6 x 0.8, 13 partitions for 6,000 items. On this clock a probe's time is
    # the requests served beside it, so the limiter's lone first request (before any answer)
    # makes probes look quicker and the plan coarser: 10 or more.
    walked = {p: r for p, r in result.manifest.partitions.items()
              if not p.startswith(("catch-up", "edge:")) and isinstance(r, dict)}  # fmt: skip
    assert len(walked) >= 10
    # One pass is 120 pages; cuts (re-reading a partition's pages) are rare when a walk about to
    # pass the cap with its partition's last pages near takes them: under 2.5 passes' worth.
    assert requests < 6000 / 50 * 2.5


async def test_a_cut_partition_resumes_from_its_pieces(tmp_path: Path) -> None:
    """Interrupted after a cut, the checkpoint's plan lists the pieces; --resume walks them
    (finished ones kept) and the dump ends exact."""
    clock = PagedClock(per_request=0.25 / 4)
    settings = SimSettings(nobb_items=8000, rate_limit=0, seed=7, token_ttl=2)
    async with await _simulator(settings, clock) as sim:
        task = asyncio.create_task(_run("dump", sim, tmp_path, clock))
        run_dir: Path | None = None
        for _ in range(20_000):
            await asyncio.sleep(0.005)
            runs = list((tmp_path / "nobb").glob("2*"))
            if runs and (runs[0] / "checkpoint.json").exists():
                cp = Checkpoint.load(runs[0])
                if cp.plan is not None and len(cp.plan) > 2 and cp.done:
                    run_dir = runs[0]
                    break
        assert run_dir is not None, "no cut was checkpointed"
        task.cancel()
        with pytest.raises(Interrupted):
            await task
        planned = Checkpoint.load(run_dir).plan
        assert planned is not None and len(planned) > 2
        resumed = await _run("dump", sim, tmp_path, clock, resume=True)
        served = _served(sim)
    assert resumed.run_dir == run_dir and resumed.exit_code == 0 and resumed.manifest.complete
    _exact(resumed, served)


async def test_a_sync_walk_longer_than_its_tokens_is_cut_too(tmp_path: Path) -> None:
    """A first sync (one partition from 1990 on) against 2 s tokens is cut and ends exact; an
    interrupted one resumes from the pieces its checkpoint lists."""
    clock = PagedClock(per_request=0.25 / 4)
    settings = SimSettings(nobb_items=6000, rate_limit=0, seed=9, token_ttl=2)
    async with await _simulator(settings, clock) as sim:
        task = asyncio.create_task(_run("sync", sim, tmp_path, clock))
        for _ in range(20_000):
            await asyncio.sleep(0.005)
            runs = list((tmp_path / "nobb").glob("2*"))
            if runs and (runs[0] / "checkpoint.json").exists():
                cp = Checkpoint.load(runs[0])
                if cp.plan is not None and cp.done:
                    break
        task.cancel()
        with pytest.raises(Interrupted):
            await task
        resumed = await _run("sync", sim, tmp_path, clock, resume=True)
        served = _served(sim)
    assert resumed.exit_code == 0 and resumed.manifest.complete and resumed.mode == "sync"
    _exact(resumed, served)
    assert resumed.manifest.checks["x_totalHits_sum"] == 6000


@pytest.mark.parametrize(("items", "cut"), [(950, False), (1050, True)])
async def test_a_last_page_past_walk_max_seconds_is_taken_not_cut(
    tmp_path: Path, items: int, cut: bool
) -> None:
    """A first sync (one partition, two ends, 250 ms a page) would pass walk_max_seconds (2.3 s)
    with its next pages (9 and 8 pages walked: the second end started after the first answer):
    with 100 items left those pages end it and are taken, uncut; with 200 left it is cut."""
    clock = PagedClock(per_request=0.25 / 2)  # two requests in flight: 250 ms each
    settings = SimSettings(nobb_items=items, rate_limit=0, seed=3)
    async with await _simulator(settings, clock) as sim:
        result = await _run("sync", sim, tmp_path, clock, walk_max_seconds=2.3, token_ttl=3)
        expired = sim.stats["expired_tokens"]
        served = _served(sim)
    assert expired == 0 and result.exit_code == 0 and result.manifest.complete
    _exact(result, served)
    assert bool(_cut(result)) is cut
