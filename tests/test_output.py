"""Manifest and reader: the manifest lists exactly the shards, and verify catches every damage."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from harvester.errors import OutputError
from harvester.output import latest_run, read_run, verify_run
from harvester.store.keyset import KeySet
from harvester.store.manifest import Manifest, new_run_id, write_manifest
from harvester.store.sink import ShardSink

T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


async def _run(run_dir: Path, n: int = 23, *, complete: bool = True) -> Manifest:
    run_dir.mkdir(parents=True)
    async with ShardSink(run_dir, keys=KeySet(), shard_max_records=10) as sink:
        for i in range(n):
            await sink.write(i, orjson.dumps({"nobbNumber": i, "t": "æøå"}))
        shards = await sink.commit()
    manifest = Manifest(
        source="nobb", mode="dump", complete=complete, shards=tuple(shards), started=T0,
        finished=T0, config_digest="d" * 64, run_id=run_dir.name,
    )  # fmt: skip
    write_manifest(run_dir, manifest)
    return manifest


async def test_manifest_lists_exactly_the_shards(tmp_path: Path) -> None:
    """manifest.json has the contract keys and lists exactly the part files present."""
    run = tmp_path / "nobb" / "20261122T020000Z"
    await _run(run)
    data = orjson.loads((run / "manifest.json").read_bytes())
    assert {"source", "mode", "complete", "records", "shards", "started", "finished"} <= set(data)
    assert data["records"] == 23
    assert [s["path"] for s in data["shards"]] == sorted(p.name for p in run.glob("part-*"))
    assert [s["records"] for s in data["shards"]] == [10, 10, 3]
    assert data["started"] == "2026-11-22T02:00:00+00:00"


async def test_reader_round_trips_records(tmp_path: Path) -> None:
    """read_run yields exactly the records written, in order."""
    run = tmp_path / "r"
    await _run(run)
    assert list(read_run(run)) == [{"nobbNumber": i, "t": "æøå"} for i in range(23)]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("flip", r"sha256 does not match"),
        ("truncate", r"bytes, the manifest says"),
        ("extra", r"shards not in the manifest: part-00009.ndjson.gz"),
        ("missing", r"listed in the manifest but missing"),
    ],
)
async def test_verify_detects_damage(tmp_path: Path, damage: str, message: str) -> None:
    """A flipped byte, a truncated, an extra or a missing shard each fail verification."""
    run = tmp_path / "r"
    await _run(run)
    shard = run / "part-00001.ndjson.gz"
    if damage == "flip":
        data = bytearray(shard.read_bytes())
        data[20] ^= 0xFF
        shard.write_bytes(bytes(data))
    elif damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:-5])
    elif damage == "extra":
        (run / "part-00009.ndjson.gz").write_bytes(b"")
    else:
        shard.unlink()
    with pytest.raises(OutputError, match=message):
        verify_run(run)


async def test_latest_run_prefers_complete(tmp_path: Path) -> None:
    """latest_run finds the newest complete run, or the newest at all when asked."""
    await _run(tmp_path / "20261120T020000Z")
    await _run(tmp_path / "20261121T020000Z", complete=False)
    (tmp_path / "20261122T020000Z").mkdir()  # unfinished: no manifest
    assert latest_run(tmp_path) == tmp_path / "20261120T020000Z"
    assert latest_run(tmp_path, complete_only=False) == tmp_path / "20261121T020000Z"


def test_run_ids_sort_and_never_repeat() -> None:
    """Run ids are sortable UTC times; a taken id gets a suffix that sorts after it."""
    assert new_run_id(T0) == "20261122T020000Z"
    taken = ["20261122T020000Z", "20261122T020000Z-1"]
    assert new_run_id(T0, taken) == "20261122T020000Z-2"
    assert sorted([*taken, "20261122T020000Z-2"]) == [*taken, "20261122T020000Z-2"]
