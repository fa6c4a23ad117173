"""`harvester status`: real run directories in, exact report fields out, never a traceback."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harvester.cli import main
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.status import collect_status, render_status
from harvester.store.checkpoint import Checkpoint
from harvester.store.lock import RunLock
from harvester.store.manifest import Manifest, ShardInfo, write_manifest
from tests.clocks import NOWS, clocks_at
from tests.harness import dump_nobb

SHA = "0" * 64


def _crashed_run(source_dir: Path, run_id: str, mode: str = "dump") -> Checkpoint:
    """A run directory as a SIGKILL leaves it: a checkpoint with one of two partitions done."""
    run_dir = source_dir / run_id
    run_dir.mkdir(parents=True)
    cp = Checkpoint(
        started="2026-11-20T02:00:00+00:00",
        mode=mode,
        plan=[[None, "2020-01-01"], ["2020-01-02", None]],
        done={"start..2020-01-01": {"ok": True, "total_hits": 700}},
        shards=[ShardInfo("part-00000.ndjson.gz", 700, 9000, SHA),
                ShardInfo("part-00001.ndjson.gz", 55, 800, SHA)],
    )  # fmt: skip
    cp.save(run_dir)
    return cp


def _manifest_run(source_dir: Path, run_id: str, *, complete: bool = True) -> None:
    """A finished run written through the manifest API: 90.5 s, two shards, 1,234 records."""
    run_dir = source_dir / run_id
    run_dir.mkdir(parents=True)
    manifest = Manifest(
        source=source_dir.name, mode="sync", complete=complete,
        shards=(ShardInfo("part-00000.ndjson.gz", 1000, 5000, SHA),
                ShardInfo("part-00001.ndjson.gz", 234, 900, SHA)),
        started=datetime(2026, 11, 21, 2, 0, 0, tzinfo=UTC),
        finished=datetime(2026, 11, 21, 2, 1, 30, 500000, tzinfo=UTC),
        config_digest="test", run_id=run_id,
    )  # fmt: skip
    write_manifest(run_dir, manifest)


async def test_complete_dump_is_listed_with_records_and_high_water(tmp_path: Path) -> None:
    """A real dump shows as complete with its records, shards, times, and state.json's marks."""
    async with Simulator(SimSettings(nobb_items=2000, rate_limit=0, seed=31)) as sim:
        result = await dump_nobb(sim, tmp_path)
    m = result.manifest
    data = collect_status(tmp_path)
    assert data["out"] == str(tmp_path)
    (src,) = data["sources"]
    assert (src["source"], src["dir"], src["running"], src["lock_holder"], src["problems"]) == (
        "nobb", str(tmp_path / "nobb"), False, None, [],
    )  # fmt: skip
    assert src["runs"] == [{
        "run_id": result.run_dir.name, "mode": "dump", "status": "complete", "complete": True,
        "records": 2000, "shards": len(m.shards), "started": m.started.isoformat(),
        "finished": m.finished.isoformat(),
        "duration_seconds": round((m.finished - m.started).total_seconds(), 3),
    }]  # fmt: skip
    high_water = m.started.date().isoformat()
    assert src["high_water"] == {"high_water": high_water}
    assert src["last_complete_run"] == {
        "run_id": result.run_dir.name, "mode": "dump", "records": 2000,
    }  # fmt: skip
    assert src["state_other"] == {}
    assert src["resumable"] == {"dump": None, "sync": None, "snapshot": None}
    text = render_status(data)
    assert f"  high_water: {high_water}\n" in text
    assert f"  last complete run: {result.run_dir.name} (dump, 2,000 records)\n" in text
    row = next(line for line in text.splitlines() if line.startswith(f"  {result.run_dir.name}"))
    assert row.split()[1:5] == ["dump", "complete", "2,000", str(len(m.shards))]


@pytest.mark.parametrize("now", NOWS, ids=lambda n: n.isoformat())
async def test_incomplete_real_run_is_reported_resumable(tmp_path: Path, now: datetime) -> None:
    """A dump whose partitions failed is incomplete, and is the run `dump --resume` continues."""
    settings = SimSettings(nobb_items=3000, rate_limit=0, seed=21, fail_matching="pageToken=",
                           now=now)  # fmt: skip
    sim_clock, clock = clocks_at(now)
    async with Simulator(settings, clock=sim_clock) as sim:
        result = await dump_nobb(sim, tmp_path, clock=clock, page_size=100, retries=1)
    assert result.exit_code == 1
    cp = Checkpoint.load(result.run_dir)
    assert cp.plan is not None
    (src,) = collect_status(tmp_path)["sources"]
    (run,) = src["runs"]
    assert (run["status"], run["complete"], run["records"]) == (
        "incomplete", False, result.manifest.records,
    )  # fmt: skip
    # An incomplete run never advances the high-water marks.
    assert (src["high_water"], src["last_complete_run"]) == ({}, None)
    assert src["resumable"] == {
        "dump": {
            "run_id": result.run_dir.name, "started": cp.started,
            "partitions_done": len(cp.done), "partitions_planned": len(cp.plan),
            "shards": len(cp.shards), "records": sum(s.records for s in cp.shards),
        },
        "sync": None,
        "snapshot": None,
    }  # fmt: skip
    text = render_status(collect_status(tmp_path))
    shards = f"{len(cp.shards)} shard" + ("" if len(cp.shards) == 1 else "s")
    assert (
        f"  resumable dump: {result.run_dir.name}: {len(cp.done)} of {len(cp.plan)} partitions "
        f"done, {shards}, {sum(s.records for s in cp.shards):,} records so far "
        "(harvester dump nobb --resume)\n"
    ) in text


def test_crashed_run_is_resumable_and_running_while_locked(tmp_path: Path) -> None:
    """A checkpoint without manifest is crashed; while the lock is held it is running instead."""
    source_dir = tmp_path / "nobb"
    _manifest_run(source_dir, "20261121T020000Z")
    _crashed_run(source_dir, "20261122T020000Z")
    (src,) = collect_status(tmp_path)["sources"]
    assert [(r["run_id"], r["status"]) for r in src["runs"]] == [
        ("20261122T020000Z", "crashed"), ("20261121T020000Z", "complete"),
    ]  # fmt: skip
    crashed = src["runs"][0]
    assert (crashed["mode"], crashed["records"], crashed["shards"], crashed["finished"]) == (
        "dump", 755, 2, None,
    )  # fmt: skip
    assert src["resumable"] == {
        "dump": {"run_id": "20261122T020000Z", "started": "2026-11-20T02:00:00+00:00",
                 "partitions_done": 1, "partitions_planned": 2, "shards": 2, "records": 755},
        "sync": None,
        "snapshot": None,
    }  # fmt: skip
    assert not (source_dir / ".lock").exists()  # status never creates the lock file
    with RunLock(source_dir):
        (held,) = collect_status(tmp_path)["sources"]
        assert held["running"] is True
        assert held["lock_holder"].startswith(f"pid {os.getpid()} since ")
        assert held["runs"][0]["status"] == "running"
        assert "nobb: running (pid " in render_status(collect_status(tmp_path))
    with RunLock(source_dir):  # the lock was released by every status call above
        pass
    (after,) = collect_status(tmp_path)["sources"]
    assert (after["running"], after["runs"][0]["status"]) == (False, "crashed")


def test_last_limits_runs_and_duration_is_exact(tmp_path: Path) -> None:
    """Only the newest `last` runs are listed, newest first, each with its exact duration."""
    source_dir = tmp_path / "nobb"
    for day in ("18", "19", "20"):
        _manifest_run(source_dir, f"202611{day}T020000Z", complete=day != "19")
    (src,) = collect_status(tmp_path, last=2)["sources"]
    assert src["runs"] == [
        {"run_id": "20261120T020000Z", "mode": "sync", "status": "complete", "complete": True,
         "records": 1234, "shards": 2, "started": "2026-11-21T02:00:00+00:00",
         "finished": "2026-11-21T02:01:30.500000+00:00", "duration_seconds": 90.5},
        {"run_id": "20261119T020000Z", "mode": "sync", "status": "incomplete", "complete": False,
         "records": 1234, "shards": 2, "started": "2026-11-21T02:00:00+00:00",
         "finished": "2026-11-21T02:01:30.500000+00:00", "duration_seconds": 90.5},
    ]  # fmt: skip
    assert "  20261120T020000Z  sync  complete    1,234" in render_status(collect_status(tmp_path))


def test_dbk_windows_state_and_checkpoint(tmp_path: Path) -> None:
    """DBK's learned windows are counted, not printed; its windows done have no planned total."""
    source_dir = tmp_path / "dbk"
    run_dir = source_dir / "20261122T020000Z"
    run_dir.mkdir(parents=True)
    windows = [[1_000_000_000 + i, 1_000_000_001 + i, 5] for i in range(812)]
    state = {
        "high_water": "2026-11-21T02:00:00+00:00",
        "windows": windows,
        "last_complete_run": {"run_id": "20261121T020000Z", "mode": "sync", "records": 9},
    }
    (source_dir / "state.json").write_text(json.dumps(state))
    Checkpoint(
        started="2026-11-22T02:00:00+00:00", mode="sync",
        plan=[["2026-11-20T02:00:00+00:00", "2026-11-22T02:00:00+00:00"]],
        done={f"w{i}": {"start": i, "end": i + 1} for i in range(3)},
        shards=[ShardInfo("part-00000.ndjson.gz", 42, 900, SHA)],
    ).save(run_dir)  # fmt: skip
    data = collect_status(tmp_path)
    (src,) = data["sources"]
    assert src["high_water"] == {"high_water": "2026-11-21T02:00:00+00:00"}
    assert src["state_other"] == {"windows": 812}
    assert src["resumable"]["sync"] == {
        "run_id": "20261122T020000Z", "started": "2026-11-22T02:00:00+00:00",
        "partitions_done": 3, "partitions_planned": None, "shards": 1, "records": 42,
    }  # fmt: skip
    text = render_status(data)
    assert "  windows: 812 entries\n" in text
    assert "  resumable sync: 20261122T020000Z: 3 partitions done, 1 shard, 42 records" in text
    assert "1000000000" not in text


def test_corrupt_files_are_named_not_raised(tmp_path: Path) -> None:
    """A corrupt manifest, checkpoint and state.json each give a line naming the file."""
    source_dir = tmp_path / "nobb"
    _manifest_run(source_dir, "20261121T020000Z")
    (source_dir / "20261121T020000Z" / "manifest.json").write_text("{not json")
    (source_dir / "20261122T020000Z").mkdir()
    (source_dir / "20261122T020000Z" / "checkpoint.json").write_text("[1, 2]")
    (source_dir / "state.json").write_text("")
    data = collect_status(tmp_path)
    (src,) = data["sources"]
    assert [(r["run_id"], r["status"]) for r in src["runs"]] == [
        ("20261122T020000Z", "unreadable"), ("20261121T020000Z", "unreadable"),
    ]  # fmt: skip
    manifest, checkpoint, state = (
        source_dir / "20261121T020000Z" / "manifest.json",
        source_dir / "20261122T020000Z" / "checkpoint.json",
        source_dir / "state.json",
    )
    problems = src["problems"]
    assert problems[0].startswith(f"{state}: not valid JSON (")
    assert problems[1] == f"{checkpoint}: not a JSON object"
    assert problems[2].startswith(f"{manifest}: not valid JSON (")
    assert problems[3] == (
        f"dump --resume would fail in {source_dir}: cannot read the checkpoint of "
        f"{checkpoint.parent}: list indices must be integers or slices, not str"
    )
    assert (src["high_water"], src["last_complete_run"]) == ({}, None)
    text = render_status(data)
    assert f"  problem: {manifest}: not valid JSON (" in text
    assert "Traceback" not in text


def test_cli_status_json_and_text_match_collect_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status --json` prints collect_status's dict as JSON; without --json, the table."""
    _manifest_run(tmp_path / "nobb", "20261121T020000Z")
    _crashed_run(tmp_path / "nobb", "20261122T020000Z")
    (tmp_path / "nobb" / "state.json").write_text('{"high_water": "2026-11-21"}')
    assert main(["status", "--out", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == collect_status(tmp_path)
    assert data["sources"][0]["high_water"] == {"high_water": "2026-11-21"}
    assert data["sources"][0]["resumable"]["dump"]["run_id"] == "20261122T020000Z"
    assert main(["status", "--out", str(tmp_path), "--last", "1"]) == 0
    assert capsys.readouterr().out == render_status(collect_status(tmp_path, last=1))


def test_missing_out_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An OUT that does not exist, or is a file, is exit 2 with a message naming it."""
    missing = tmp_path / "nope"
    assert main(["status", "--out", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: status: output directory {missing} does not exist\n"
    (tmp_path / "file").write_text("")
    assert main(["status", "--out", str(tmp_path / "file"), "--json"]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_empty_out_has_no_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An empty OUT (or one holding other files and folders) lists no sources and exits 0."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "summary.json").write_text("{}")
    assert collect_status(tmp_path) == {"out": str(tmp_path), "sources": []}
    assert main(["status", "--out", str(tmp_path)]) == 0
    assert "no source directories" in capsys.readouterr().out
