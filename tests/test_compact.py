"""``harvester compact``: a dump and the syncs after it, merged into the catalogue as it is now."""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from harvester.cli import main
from harvester.compact import compact_source
from harvester.config import DbkConfig, NobbConfig, OutputConfig, Secret
from harvester.output import current_run, read_lines, verify_run
from harvester.run import RunResult
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.base import Mode
from harvester.sources.dbk import DbkSource
from harvester.sources.nobb import NobbSource
from harvester.status import collect_status, render_status
from harvester.store.run_state import RunOutcome, RunState
from harvester.store.storage import location
from tests.clocks import clocks_at
from tests.expected import expected_dbk, served_nobb
from tests.harness import harvest, simulate

OUTPUT = OutputConfig(shard_max_records=300)


def _account(sim: Simulator) -> dict[str, Any]:
    return {"base_url": sim.url, "username": Secret("harvester"), "password": Secret("harvester")}


async def _harvest(sim: Simulator, out: Path, source: str, mode: Mode) -> RunResult:
    """One run of ``source`` with the default config, on a clock reading the simulator's now."""
    clock = clocks_at(sim.settings.now)[1]
    src = (NobbSource(NobbConfig(**_account(sim)), clock=clock) if source == "nobb"
           else DbkSource(DbkConfig(**_account(sim)), clock=clock))  # fmt: skip
    result = await harvest(src, out, mode=mode, output=OUTPUT, clock=clock, digest="t")
    assert result.exit_code == 0, result.summary_line()
    return result


def _snapshot(run: Path | str | None) -> dict[Any, bytes]:
    assert isinstance(run, Path)
    manifest = verify_run(run)
    assert manifest["mode"] == "snapshot" and manifest["complete"] is True
    lines = list(read_lines(run))
    keys = [orjson.loads(line).get("nobbNumber") or orjson.loads(line)["record_reference"]
            for line in lines]  # fmt: skip
    assert len(keys) == len(set(keys)), "a key written twice"
    return dict(zip(keys, lines, strict=True))


async def test_dbk_two_rounds_of_changes_additions_and_deletions_compact_to_the_catalogue(
    tmp_path: Path,
) -> None:
    """dump, then twice changes, additions and deletions and a sync: the live catalogue."""
    settings = SimSettings(dbk_products=1200, rate_limit=0, seed=25)
    async with Simulator(settings) as sim:
        books = sim.ctx.books
        await _harvest(sim, tmp_path, "dbk", "dump")
        live = [books.record_reference(p) for p in range(books.size)
                if "<NotificationType>05" not in books.product(p)]  # fmt: skip
        now = int(sim.settings.now.timestamp())  # the clients' clocks start there
        added = []
        for round_, (changed, deleted) in enumerate(
            ((live[5:8], live[600:602]), ([live[5], live[900]], [live[6]]))
        ):
            at = now - 600 + 60 * round_
            for ref in changed:
                books.touch(ref, at)
            for ref in deleted:
                books.delete(ref, at)
            added += [books.add(at), books.add(at + 1)]
            await _harvest(sim, tmp_path, "dbk", "sync")
        (src,) = collect_status(tmp_path)["sources"]
        assert (src["current"], src["unmerged_syncs"]) == (None, 2)
        result = await compact_source("dbk", output=OUTPUT, out_dir=tmp_path)
        served = expected_dbk(books, range(books.size))
    expected = {k: v for k, v in served.items() if not orjson.loads(v).get("deleted")}
    for ref in (live[600], live[601], live[6]):
        assert ref in served and ref not in expected
    snapshot = _snapshot(current_run(tmp_path / "dbk"))
    assert snapshot == expected
    assert set(added) & set(expected) and live[5] in snapshot
    assert result.manifest is not None
    checks: Any = result.manifest.checks
    assert checks["records"] == len(expected)
    assert checks["deleted_dropped"] >= 3 and checks["replaced"] >= 6
    bases = orjson.loads((Path(str(result.run)) / "manifest.json").read_bytes())["bases"]
    assert [b["mode"] for b in bases] == ["dump", "sync", "sync"]
    for b in bases:
        raw = (tmp_path / "dbk" / b["run_id"] / "manifest.json").read_bytes()
        assert b["sha256"] == hashlib.sha256(raw).hexdigest()


async def test_nobb_changes_compact_to_the_items_as_served(tmp_path: Path) -> None:
    """NOBB: items changed after the dump are in the snapshot in their newest version."""
    settings = SimSettings(nobb_items=3000, rate_limit=0, seed=26)
    async with Simulator(settings) as sim:
        cat = sim.ctx.nobb
        await _harvest(sim, tmp_path, "nobb", "dump")
        for keys in ([cat.keys[3], cat.keys[1500]], [cat.keys[3], cat.keys[2999]]):
            for key in keys:
                cat.touch(key, sim.settings.now.date())
            sim.ctx.nobb_generation += 1  # the simulator's cached orderings are stale now
            await _harvest(sim, tmp_path, "nobb", "sync")
        await compact_source("nobb", output=OUTPUT, out_dir=tmp_path)
        served = await served_nobb(sim, settings)
    assert _snapshot(current_run(tmp_path / "nobb")) == served


async def test_a_lone_dump_then_nothing_new(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a lone dump a snapshot equal to it; again with nothing new: says so, writes nothing."""
    settings = SimSettings(nobb_items=1000, rate_limit=0, seed=27)
    async with Simulator(settings) as sim:
        dump = await _harvest(sim, tmp_path, "nobb", "dump")
    first = await compact_source("nobb", output=OUTPUT, out_dir=tmp_path)
    assert first.run is not None
    assert sorted(read_lines(dump.run_dir)) == sorted(read_lines(Path(str(first.run))))
    current = orjson.loads((tmp_path / "nobb" / "current.json").read_bytes())
    assert current == {"run_id": first.run.name, "as_of": dump.manifest.started.isoformat(),
                       "records": 1000}  # fmt: skip
    before = sorted(p.name for p in (tmp_path / "nobb").iterdir())
    again = await compact_source("nobb", output=OUTPUT, out_dir=tmp_path)
    assert again.run is None and again.exit_code == 0 and "nothing new" in again.message
    assert sorted(p.name for p in (tmp_path / "nobb").iterdir()) == before
    status = collect_status(tmp_path)["sources"][0]
    assert status["current"]["run_id"] == first.run.name and status["unmerged_syncs"] == 0
    text = render_status(collect_status(tmp_path))
    assert f"  current snapshot: {first.run.name} (as of " in text
    assert ", 1,000 records), 0 syncs not merged yet\n" in text


async def test_a_base_that_fails_its_sha256_writes_nothing(tmp_path: Path) -> None:
    """A dump shard changed after its manifest: exit 1, no run directory, no current.json."""
    settings = SimSettings(nobb_items=1000, rate_limit=0, seed=28)
    async with Simulator(settings) as sim:
        dump = await _harvest(sim, tmp_path, "nobb", "dump")
    shard = sorted(dump.run_dir.glob("part-*"))[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, another sha256
    shard.write_bytes(bytes(data))
    config = tmp_path / "c.toml"
    config.write_text(f'[output]\ndir = "{tmp_path}"\n[nobb]\nbase_url = "http://127.0.0.1:9"\n'
                      'username = "u"\npassword = "p"\n')  # fmt: skip
    code = await asyncio.to_thread(main, ["compact", "nobb", "--config", str(config), "-q"])
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "nobb").iterdir()) == sorted(
        [".lock", "state.json", dump.run_dir.name]
    )


def _sim_process(items: int, seed: int) -> tuple[subprocess.Popen[str], str]:
    """A simulator whose world is dated today (``--now now``), so a sync finds recent items."""
    flags = ("--nobb-items", str(items), "--seed", str(seed), "--rate-limit", "0")
    return simulate(*flags, "--now", "now")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "harvester", *args, "-q"]


def _kill_when_visited(cmd: list[str], source_dir: Path, more_than: int = 0) -> str:
    """Start ``cmd``; SIGKILL it once its snapshot checkpoint records more than ``more_than``
    lines merged; the snapshot's run id."""
    with subprocess.Popen(cmd) as proc:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            for cp in source_dir.glob("2*/checkpoint.json"):
                data = orjson.loads(cp.read_bytes() or b"{}")
                visited = data.get("positions", {}).get("visited", 0)
                if data.get("mode") == "snapshot" and visited > more_than:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return cp.parent.name
            time.sleep(0.005)  # polling the checkpoint file
    raise AssertionError("the compaction ended before a checkpoint listed merged lines")


def test_sigkill_mid_compaction_then_resume(tmp_path: Path) -> None:
    """SIGKILL in the dump, after the sync was merged, then --resume: the same run completes,
    every item once (the sync's versions, the same bytes: nothing changed)."""
    sim, url = _sim_process(12_000, 29)
    try:
        cfg = tmp_path / "c.toml"
        account = f'base_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
        cfg.write_text(f'[output]\ndir = "{tmp_path}"\nshard_max_records = 400\n'
                       f'checkpoint_seconds = 0.001\n[nobb]\n{account}')  # fmt: skip
        for mode in ("dump", "sync"):
            run = subprocess.run(_cli(mode, "nobb", "--config", str(cfg), "--progress", "never"))
            assert run.returncode == 0
    finally:
        sim.terminate()
        sim.wait()
        assert sim.stdout is not None
        sim.stdout.close()
    source_dir = tmp_path / "nobb"
    dump_dir, sync_dir = sorted(source_dir.glob("2*"))
    synced = int(str(verify_run(sync_dir)["records"]))
    assert 0 < synced < 12_000
    command = _cli("compact", "nobb", "--config", str(cfg))
    killed = _kill_when_visited(command, source_dir, more_than=synced)
    assert not (source_dir / killed / "manifest.json").exists()
    assert not (source_dir / "current.json").exists()
    assert f"resumable snapshot: {killed}" in render_status(collect_status(tmp_path))
    assert "(harvester compact nobb --resume)" in render_status(collect_status(tmp_path))
    done = subprocess.run(_cli("compact", "nobb", "--config", str(cfg), "--resume"),
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in source_dir.glob("2*")) == [dump_dir.name, sync_dir.name, killed]
    assert current_run(source_dir) == source_dir / killed
    assert sorted(read_lines(source_dir / killed)) == sorted(read_lines(dump_dir))


def test_compact_after_sync_leaves_a_fresh_snapshot(tmp_path: Path) -> None:
    """[output] compact_after_sync: each complete sync is followed by a snapshot holding it."""
    sim, url = _sim_process(2000, 30)
    try:
        account = f'base_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[output]\ndir = "{tmp_path}"\ncompact_after_sync = true\n'
                       f'[nobb]\n{account}')  # fmt: skip
        for mode in ("dump", "sync"):
            done = subprocess.run(_cli(mode, "nobb", "--config", str(cfg), "--progress", "never"),
                                  capture_output=True, text=True)  # fmt: skip
            assert done.returncode == 0, done.stderr
    finally:
        sim.terminate()
        sim.wait()
        assert sim.stdout is not None
        sim.stdout.close()
    source_dir = tmp_path / "nobb"
    runs = sorted(source_dir.glob("2*"))
    modes = [orjson.loads((r / "manifest.json").read_bytes())["mode"] for r in runs]
    assert modes == ["dump", "sync", "snapshot"], "no snapshot after the dump, one after the sync"
    assert "nobb compact: 2,000 records from 2 runs" in done.stderr
    assert current_run(source_dir) == runs[2]
    snapshot = orjson.loads((runs[2] / "manifest.json").read_bytes())
    assert [b["run_id"] for b in snapshot["bases"]] == [runs[0].name, runs[1].name]
    sync = orjson.loads((runs[1] / "manifest.json").read_bytes())
    assert snapshot["config_digest"] == sync["config_digest"] != ""
    assert sorted(read_lines(runs[2])) == sorted(read_lines(runs[0]))


def test_a_failed_compaction_after_sync_leaves_the_sync_complete(tmp_path: Path) -> None:
    """compact_after_sync with a snapshot shard spoiled: exit 1, the sync complete, state.json
    advanced, the previous snapshot still current, no new snapshot."""
    sim, url = _sim_process(1500, 33)
    try:
        account = f'base_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[output]\ndir = "{tmp_path}"\ncompact_after_sync = true\n'
                       f'shard_max_records = 500\n[nobb]\n{account}')  # fmt: skip
        codes = []
        for mode in ("dump", "sync", "sync"):
            done = subprocess.run(_cli(mode, "nobb", "--config", str(cfg), "--progress", "never"),
                                  capture_output=True, text=True)  # fmt: skip
            codes.append(done.returncode)
            if len(codes) == 2:  # spoil the snapshot the next compaction starts from
                shard = sorted((tmp_path / "nobb").glob("2*/part-00001.ndjson.gz"))[-1]
                data = bytearray(shard.read_bytes())
                data[len(data) // 2] ^= 0xFF
                shard.write_bytes(bytes(data))
    finally:
        sim.terminate()
        sim.wait()
        assert sim.stdout is not None
        sim.stdout.close()
    assert codes == [0, 0, 1], done.stderr
    assert "nobb compact: failed:" in done.stderr and "does not match" in done.stderr
    source_dir = tmp_path / "nobb"
    runs = sorted(source_dir.glob("2*"))
    modes = [orjson.loads((r / "manifest.json").read_bytes())["mode"] for r in runs]
    assert modes == ["dump", "sync", "snapshot", "sync"]
    assert orjson.loads((runs[3] / "manifest.json").read_bytes())["complete"] is True
    state = orjson.loads((source_dir / "state.json").read_bytes())
    assert state["last_complete_run"]["run_id"] == runs[3].name
    assert current_run(source_dir) == runs[2]


async def test_the_docs_snapshot_example_reads_the_current_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/output.md's snapshot example (Python, DuckDB, pandas) runs as written."""
    text = (Path(__file__).parent.parent / "docs" / "output.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
               if "current_run" in b]  # fmt: skip
    async with Simulator(SimSettings(nobb_items=800, rate_limit=0, seed=31)) as sim:
        await _harvest(sim, tmp_path / "out", "nobb", "dump")
    await compact_source("nobb", output=OUTPUT, out_dir=tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(code, "docs/output.md", "exec"), scope)
    assert scope["items"] == scope["count"] == 800 and len(scope["frame"]) == 800


async def test_keep_deleted_keeps_the_deletes(tmp_path: Path) -> None:
    """--keep-deleted: DBK deletes stay in the snapshot, which then equals the lone dump."""
    settings = SimSettings(dbk_products=600, rate_limit=0, seed=32)
    async with Simulator(settings) as sim:
        dump = await _harvest(sim, tmp_path, "dbk", "dump")
    kept = await compact_source("dbk", output=OUTPUT, out_dir=tmp_path, keep_deleted=True)
    assert kept.manifest is not None
    lines = sorted(read_lines(dump.run_dir))
    assert sorted(read_lines(Path(str(kept.run)))) == lines
    deletes = sum(b'"deleted":true' in line for line in lines)
    checks: Any = kept.manifest.checks
    assert deletes and (checks["deleted_dropped"], checks["deleted_kept"]) == (0, deletes)


async def _write_run(out: Path, mode: str, at: datetime, lines: list[bytes]) -> str:
    """A complete run holding exactly ``lines`` (the sink's key set bypassed: duplicates too)."""
    source_dir = location(out) / "nobb"
    source_dir.make()
    run = RunState.open(source_dir, source="nobb", mode=mode, output=OUTPUT,
                        key_of=lambda line: 0, now=at)  # fmt: skip
    async with run:
        await run.sink.write_lines(lines)
        outcome = RunOutcome(complete=True, config_digest="t", partitions={}, checks={},
                             transport={}, rate_limit={})  # fmt: skip
        await run.finish(outcome, finished=at)
    return run.run_dir.name


def _item(number: int, modified: str, extra: str = "") -> bytes:
    return (f'{{"nobbNumber":{number},"status":{{"lastModifiedDate":"{modified}"}}'
            f'{extra}}}').encode()  # fmt: skip


async def test_a_key_held_twice_by_one_run_keeps_its_newer_change_date(tmp_path: Path) -> None:
    """Within one run the newer lastModifiedDate wins (a tie: the later line); a line held
    twice byte for byte is kept once; a later run still wins over both."""
    day = datetime(2026, 11, 1, 2, tzinfo=UTC)
    dump = [_item(1, "2026-10-02"), _item(2, "2026-10-01"), _item(1, "2026-10-01"),
            _item(3, "2026-10-01"), _item(3, "2026-10-01"), _item(4, "2026-10-05"),
            _item(2, "2026-10-03"), _item(5, "2026-10-01", ',"a":1'),
            _item(5, "2026-10-01", ',"a":2')]  # fmt: skip
    await _write_run(tmp_path, "dump", day, dump)
    await _write_run(tmp_path, "sync", day + timedelta(days=1),
                     [_item(4, "2026-10-06"), _item(4, "2026-10-04")])  # fmt: skip
    result = await compact_source("nobb", output=OUTPUT, out_dir=tmp_path)
    assert result.manifest is not None
    assert sorted(read_lines(Path(str(result.run)))) == sorted([
        _item(1, "2026-10-02"), _item(2, "2026-10-03"), _item(3, "2026-10-01"),
        _item(4, "2026-10-06"), _item(5, "2026-10-01", ',"a":2'),
    ])  # fmt: skip
    checks: Any = result.manifest.checks
    assert (checks["duplicates_in_run"], checks["replaced"], checks["records"]) == (5, 1, 5)
