"""NOBB dumps against the simulator over real sockets: every item exactly once, as served."""

from __future__ import annotations

import gzip
import itertools
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from harvester.cli import main
from harvester.config import Secret
from harvester.errors import AuthError
from harvester.output import read_lines, verify_run
from harvester.sim.server import Simulator
from harvester.sim.settings import FaultProfile, SimSettings
from harvester.store.storage import LocalDir
from tests.clocks import NOWS, Wall, clocks_at
from tests.expected import served_nobb
from tests.harness import cli, dump_nobb

_EPOCH = date(1970, 1, 1)


async def test_dump_writes_every_item_once_as_served(tmp_path: Path) -> None:
    """A dump with partitions walked from both ends writes exactly the catalogue, byte for byte."""
    settings = SimSettings(nobb_items=6000, rate_limit=0, seed=11)
    async with Simulator(settings) as sim:
        result = await dump_nobb(sim, tmp_path)
        served = await served_nobb(sim, settings)
    assert result.exit_code == 0
    verify_run(result.run_dir)
    lines = list(read_lines(result.run_dir))
    keys = [orjson.loads(line)["nobbNumber"] for line in lines]
    assert len(keys) == len(set(keys)) == 6000
    assert dict(zip(keys, lines, strict=True)) == served
    parts = result.manifest.partitions
    assert len([p for p in parts if not p.startswith("catch-up")]) >= 2
    assert all(r["ok"] for r in parts.values())  # type: ignore[index]
    assert result.manifest.checks["x_totalHits_sum"] == 6000
    # Shards close at 1500 records, or earlier when a partition is checkpointed.
    assert all(0 < s.records <= 1500 for s in result.manifest.shards)


async def test_expired_tokens_are_recovered_without_loss(tmp_path: Path) -> None:
    """When every walk's tokens die mid-run (page 1 comes back), the dump is still exact."""
    clock = Wall(1_790_000_000.0)
    settings = SimSettings(nobb_items=4000, rate_limit=0, seed=12)
    async with Simulator(settings, clock=clock) as sim:

        def jump_after_pages() -> float:
            # Three hours pass once 20 pages (probes included) have been served: every open
            # chain is expired then.
            return clock.now + (10_800 if sim.stats["nobb_pages"] >= 20 else 0)

        sim.ctx.clock = jump_after_pages
        result = await dump_nobb(sim, tmp_path, page_size=100, concurrency=2)
        expected = sim.nobb_keys()
        assert sim.stats["expired_tokens"] >= 1
    keys = [orjson.loads(line)["nobbNumber"] for line in read_lines(result.run_dir)]
    assert sorted(keys) == expected
    # Each dead chain was restarted or its partition cut into pieces by change date.
    recovered = 0
    for r in result.manifest.partitions.values():
        assert isinstance(r, dict)
        recovered += int(r.get("asc_restarts", 0)) + int(r.get("desc_restarts", 0))
        recovered += bool(r.get("split_into"))
    assert recovered >= 1
    assert result.exit_code == 0 and result.manifest.checks["x_totalHits_sum"] == 4000


@pytest.mark.parametrize("profile", ["flaky", "hostile"])
async def test_faults_heal_to_the_same_records(tmp_path: Path, profile: FaultProfile) -> None:
    """Under flaky and hostile faults the dump ends complete with exactly the clean records."""
    settings = SimSettings(nobb_items=5000, rate_limit=0, seed=13, faults=profile)
    async with Simulator(settings) as sim:
        # Small pages: enough requests that every profile draws some faults.
        result = await dump_nobb(sim, tmp_path, page_size=100)
        injected = dict(sim.ctx.faults.injected)
    async with Simulator(SimSettings(nobb_items=5000, rate_limit=0, seed=13)) as clean:
        served = await served_nobb(clean, settings)
    assert sum(injected.values()) > 0
    assert result.exit_code == 0
    lines = list(read_lines(result.run_dir))
    assert {orjson.loads(line)["nobbNumber"]: line for line in lines} == served
    assert len(lines) == 5000


async def test_wrong_password_is_an_auth_error(tmp_path: Path) -> None:
    """A 401 stops the source with AuthError (exit 3) naming the keys, not the values."""
    async with Simulator(SimSettings(nobb_items=100, rate_limit=0)) as sim:
        with pytest.raises(AuthError, match=r"nobb.username / nobb.password") as info:
            await dump_nobb(sim, tmp_path, password=Secret("marker-wrong-password"))
    assert info.value.exit_code == 3
    assert "marker-wrong-password" not in str(info.value)


async def test_cli_dump_then_sync(tmp_path: Path) -> None:
    """`harvester dump nobb` exits 0 with a manifest; `sync nobb` then pulls from the high-water."""
    async with Simulator(SimSettings(nobb_items=1500, rate_limit=0)) as sim:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[output]\ndir = "{tmp_path / "out"}"\n'
            f'[nobb]\nbase_url = "{sim.url}"\nusername = "${{NU}}"\npassword = "${{NP}}"\n'
            'rate_limit = "0"\npage_size = 400\n'
        )
        import os

        os.environ["NU"], os.environ["NP"] = "harvester", "harvester"
        try:
            code, _, _ = await cli("dump", "nobb", "--config", str(cfg))
            assert code == 0
            code, _, _ = await cli("sync", "nobb", "--config", str(cfg))
            assert code == 0
        finally:
            del os.environ["NU"], os.environ["NP"]
    runs = sorted((tmp_path / "out" / "nobb").glob("2*"))
    assert len(runs) == 2
    dump, sync = (orjson.loads((r / "manifest.json").read_bytes()) for r in runs)
    assert (dump["mode"], dump["records"], dump["complete"]) == ("dump", 1500, True)
    assert (sync["mode"], sync["complete"]) == ("sync", True)
    state = orjson.loads((tmp_path / "out" / "nobb" / "state.json").read_bytes())
    assert state["last_complete_run"]["mode"] == "sync"


@pytest.mark.parametrize("now", NOWS, ids=lambda n: n.isoformat())
async def test_item_changed_during_the_dump_is_caught_up(tmp_path: Path, now: datetime) -> None:
    """An item that moves to the run's day mid-run is written once, in its latest version."""
    from datetime import UTC

    settings = SimSettings(nobb_items=3000, rate_limit=0, seed=14, now=now)
    sim_clock, client = clocks_at(now)
    async with Simulator(settings, clock=sim_clock) as sim:
        # The oldest item: its partition is walked last by the ascending end of the first one.
        cat = sim.ctx.nobb
        oldest = min(range(cat.size), key=lambda p: cat.modified[p])
        moved = cat.keys[oldest]
        before = list(cat.modified)
        wall = sim.ctx.clock
        done: list[bool] = []

        def clock() -> float:
            if sim.stats["nobb_pages"] >= 12 and not done:
                done.append(True)
                sim.touch_nobb(moved, datetime.fromtimestamp(client.time(), UTC).date())
            return wall()

        sim.ctx.clock = clock
        result = await dump_nobb(sim, tmp_path, clock=client, page_size=100, concurrency=2)
        assert done
        served = await served_nobb(sim, settings)
    lines = list(read_lines(result.run_dir))
    keys = [orjson.loads(line)["nobbNumber"] for line in lines]
    assert sorted(keys) == sim.nobb_keys()
    assert keys.count(moved) == 1
    # Every item as served now: the moved one in its new version (its old line was replaced).
    assert dict(zip(keys, lines, strict=True)) == served
    assert result.manifest.checks["replaced_by_newer_version"] == 1
    ((pid, catch_up),) = [(p, r) for p, r in result.manifest.partitions.items()
                          if p.startswith("catch-up")]  # fmt: skip
    assert isinstance(catch_up, dict)
    # The catch-up walk (from the run's day, or the day before until from is proven inclusive)
    # saw those days' items and the moved one.
    assert result.manifest.started.date() == now.date()
    first = (date.fromisoformat(pid.removeprefix("catch-up:").split("..")[0]) - _EPOCH).days
    assert first in ((now.date() - _EPOCH).days, (now.date() - _EPOCH).days - 1)
    assert catch_up["total_hits"] == sum(1 for m in before if m >= first) + 1


@pytest.mark.parametrize("now", NOWS, ids=lambda n: n.isoformat())
async def test_failed_partition_makes_the_run_incomplete(tmp_path: Path, now: datetime) -> None:
    """Walks that fail past page 1 (any "now"): exit 1, failures named, the rest written."""
    settings = SimSettings(nobb_items=3000, rate_limit=0, seed=21, fail_matching="pageToken=",
                           now=now)  # fmt: skip
    sim_clock, clock = clocks_at(now)
    async with Simulator(settings, clock=sim_clock) as sim:
        result = await dump_nobb(sim, tmp_path, clock=clock, page_size=100, retries=1)
    assert result.manifest.started.date() == now.date()
    assert result.exit_code == 1
    assert result.failed
    assert result.manifest.complete is False
    for pid in result.failed:
        entry = result.manifest.partitions[pid]
        assert isinstance(entry, dict)
        assert "nobb partition" in str(entry["error"])
    verify_run(result.run_dir)
    assert 0 < result.manifest.records <= 3000  # the other end may have covered a failed one


async def test_summary_json_and_no_secret_anywhere(tmp_path: Path) -> None:
    """--summary-json and the Prometheus file describe the run; the password appears nowhere."""
    import asyncio
    import contextlib
    import io

    marker = "marker-secret-Zq8"
    settings = SimSettings(nobb_items=800, rate_limit=0, password=marker)
    async with Simulator(settings) as sim:
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[output]\ndir = "{tmp_path / "out"}"\nprometheus_file = "{tmp_path / "h.prom"}"\n'
            f'[nobb]\nbase_url = "{sim.url}"\n'
            f'username = "harvester"\npassword = "{marker}"\nrate_limit = "0"\n'
        )
        summary = tmp_path / "summary.json"
        err = io.StringIO()
        argv = ["dump", "nobb", "--config", str(cfg), "--summary-json", str(summary),
                "--log-format", "json", "-v", "--progress", "never"]  # fmt: skip
        with contextlib.redirect_stderr(err):
            code = await asyncio.to_thread(main, argv)
    assert code == 0
    data = orjson.loads(summary.read_bytes())
    assert data["exit_code"] == 0
    (src,) = data["sources"]
    assert (src["source"], src["complete"], src["records"]) == ("nobb", True, 800)
    assert marker not in err.getvalue()
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            body = gzip.decompress(raw) if path.suffix == ".gz" else raw
            assert marker.encode() not in body, path
    assert marker.encode() not in summary.read_bytes()
    prom = (tmp_path / "h.prom").read_text()
    assert 'harvester_records{source="nobb",mode="dump"} 800' in prom
    assert 'harvester_complete{source="nobb",mode="dump"} 1' in prom


async def test_failed_planning_leaves_an_incomplete_manifest(tmp_path: Path) -> None:
    """Probes that always fail: no walks, an incomplete manifest naming 'plan', exit 1."""
    settings = SimSettings(nobb_items=1000, rate_limit=0, seed=22, fail_matching="pageSize=1")
    async with Simulator(settings) as sim:
        result = await dump_nobb(sim, tmp_path, page_size=500, retries=1)
    assert result.exit_code == 1 and result.failed == ("plan",)
    assert result.manifest.complete is False and result.manifest.records == 0
    plan: Any = result.manifest.partitions["plan"]
    assert plan["error"].startswith("HTTP 500") and "nobb probe" in plan["error"]


async def test_checkpoints_are_written_off_the_event_loop_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mid-run checkpoints are written in a worker thread, each listing every shard before it."""
    written: list[tuple[bool, dict[str, Any]]] = []
    real = LocalDir.write

    def spy(self: LocalDir, name: str, data: bytes) -> None:
        real(self, name, data)
        if name == "checkpoint.json":
            on_loop = threading.current_thread() is threading.main_thread()
            written.append((on_loop, orjson.loads(data)))

    monkeypatch.setattr(LocalDir, "write", spy)
    settings = SimSettings(nobb_items=6000, rate_limit=0, seed=11)
    async with Simulator(settings) as sim:
        result = await dump_nobb(sim, tmp_path)
    assert result.exit_code == 0
    first, *rest = written
    assert first[0] and first[1]["shards"] == []  # the new run's empty one, before any walk
    assert len(rest) >= 2 and not any(on_loop for on_loop, _ in rest)
    listed = [[s["path"] for s in cp["shards"]] for _, cp in rest]
    assert all(a == b[: len(a)] for a, b in itertools.pairwise(listed))
    assert listed[-1] == [s.path for s in result.manifest.shards]
