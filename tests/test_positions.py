"""Walk positions: saved at page boundaries, restored on --resume, continued from their token."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson

from harvester.config import OutputConfig
from harvester.output import read_lines
from harvester.plan.positions import Position, Positions
from harvester.plan.walk import Claim, Partition, Seam, Walk
from harvester.run import RunResult
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.nobb import NobbSource
from tests.expected import served_nobb
from tests.harness import harvest, nobb_config


def test_snapshot_round_trips_and_damaged_entries_are_dropped() -> None:
    """Positions survive JSON; an entry without a usable key or time is ignored (page 1)."""
    live = Positions()
    live.update("a..b", "asc", 10, "tok-1", 1000.0)
    live.update("a..b", "desc", 90, None, 1000.0)
    data = orjson.loads(orjson.dumps(live.snapshot()))
    data["c..d"] = {"asc": {"key": "x", "began": 1}, "desc": "junk"}
    back = Positions(data)
    assert back.get("a..b", "asc") == Position(10, "tok-1", 1000.0)
    assert back.get("a..b", "desc") == Position(90, None, 1000.0)
    assert back.get("c..d", "asc") is None and back.get("c..d", "desc") is None
    back.drop("a..b")
    assert back.snapshot() == {}


def test_restore_puts_both_ends_on_the_seam() -> None:
    """Before either walk starts, the seam knows what each end had written."""
    saved = Positions({"p": {"asc": {"key": 10, "token": "t", "began": 0},
                             "desc": {"key": 90, "token": "u", "began": 0}}})  # fmt: skip
    seam = Seam()
    saved.restore("p", seam)
    assert (seam.asc_high, seam.desc_low) == (10, 90)
    assert seam.claim("asc", 10) is Claim.SEEN and seam.claim("desc", 90) is Claim.SEEN
    assert seam.claim("asc", 11) is Claim.CLAIMED and seam.claim("desc", 89) is Claim.CLAIMED


def test_a_token_is_tried_only_while_its_chain_is_young() -> None:
    """A saved token is used if its chain began less than token_ttl minus a margin ago."""
    pos = Position(5, "tok", began=1000.0)
    assert pos.usable(1000.0 + 3600, token_ttl=7200)
    assert not pos.usable(1000.0 + 7000, token_ttl=7200)
    assert not Position(5, None, 1000.0).usable(1000.0, token_ttl=7200)


def test_continue_after_a_live_token_claims_what_follows() -> None:
    """The page after the saved key continues the walk: its keys are claimed."""
    walk = Walk(Partition(None, None), "asc", Seam(), page_size=3)
    params = walk.continue_after(30, "tok-9")
    assert params["pageToken"] == "tok-9" and params["sortOrder"] == "asc"
    assert [walk.on_item(k) for k in (31, 32, 33)] == [Claim.CLAIMED] * 3


def test_continue_after_a_dead_token_restarts_with_the_written_keys_seen() -> None:
    """If page 1 comes back instead, the walk restarts and skips every key up to the position."""
    walk = Walk(Partition(None, None), "asc", Seam(), page_size=3)
    walk.continue_after(30, "tok-dead")
    assert walk.on_item(1) is Claim.RESTART
    params = walk.restart()
    assert "pageToken" not in params
    assert [walk.on_item(k) for k in (1, 15, 30)] == [Claim.SEEN] * 3
    walk.on_page_end({"x-forwardToken": "n1"})
    assert [walk.on_item(k) for k in (31, 32)] == [Claim.CLAIMED] * 2


async def _dump(sim: Simulator, out: Path, *, resume: bool = False) -> RunResult:
    cfg = nobb_config(sim.url, page_size=50, partitions=2, concurrency=4, retries=1)
    output = OutputConfig(checkpoint_seconds=0.001)
    return await harvest(NobbSource(cfg), out, output=output, resume=resume, digest="t")


def _pages(result: RunResult, pid: str) -> int:
    parts: dict[str, Any] = dict(result.manifest.partitions)
    r = parts[pid]
    return int(r.get("asc_pages", 0)) + int(r.get("desc_pages", 0))


async def test_resume_continues_walks_from_their_saved_tokens(tmp_path: Path) -> None:
    """A partition cut off mid-walk resumes from its saved tokens: fewer pages, exact records."""
    settings = SimSettings(nobb_items=3000, rate_limit=0, seed=21)
    async with Simulator(settings) as sim:
        served = await served_nobb(sim, settings)
        reference = await _dump(sim, tmp_path / "ref")
        parts: dict[str, Any] = dict(reference.manifest.partitions)
        pid = max((p for p in parts if not parts[p].get("catch_up")),
                  key=lambda p: _pages(reference, p))  # fmt: skip
        lo, hi = pid.split("..")
        bounds = "&".join([*([f"from={lo}"] if lo != "start" else []),
                           *([f"to={hi}"] if hi != "end" else [])])  # fmt: skip
        wall = sim.ctx.clock
        start = sim.stats["nobb_pages"]

        def clock() -> float:
            # Once 8 pages of this run are served, that partition's next pages fail for good.
            if sim.stats["nobb_pages"] - start >= 8:
                failing = f"{bounds}&pageToken="
                sim.ctx.settings = dataclasses.replace(settings, fail_matching=failing)
            return wall()

        sim.ctx.clock = clock
        cut = await _dump(sim, tmp_path / "out")
        sim.ctx.clock, sim.ctx.settings = wall, settings
        checkpoint = orjson.loads((cut.run_dir / "checkpoint.json").read_bytes())
        resumed = await _dump(sim, tmp_path / "out", resume=True)
    assert cut.exit_code == 1 and cut.failed == (pid,)
    saved = checkpoint["positions"][pid]
    assert saved and all(end["token"] for end in saved.values())
    assert resumed.exit_code == 0 and resumed.run_dir == cut.run_dir
    lines = list(read_lines(resumed.run_dir))
    assert {orjson.loads(line)["nobbNumber"]: line for line in lines} == served
    assert len(lines) == len(served)
    assert 0 < _pages(resumed, pid) < _pages(reference, pid)
    assert resumed.manifest.checks["written"] == resumed.manifest.checks["x_totalHits_sum"]
