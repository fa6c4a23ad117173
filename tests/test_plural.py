"""Printed counts agree with their nouns: "1 shard", "2 shards", never "1 shards"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from harvester.plural import counted
from harvester.run import RunResult
from harvester.status import render_status
from harvester.store.manifest import Manifest, ShardInfo
from harvester.store.storage import location

SHA = "0" * 64


def _result(shards: int, records: int, failed: tuple[str, ...]) -> RunResult:
    manifest = Manifest(
        source="nobb", mode="sync", complete=not failed,
        shards=tuple(ShardInfo(f"part-{i:05d}.ndjson.gz", records // shards, 10, SHA)
                     for i in range(shards)),
        started=datetime(2026, 11, 22, 2, tzinfo=UTC),
        finished=datetime(2026, 11, 22, 2, 0, 12, 400000, tzinfo=UTC),
        config_digest="test", run_id="20261122T020000Z",
    )  # fmt: skip
    return RunResult(source="nobb", mode="sync", run=location(Path("out/nobb/20261122T020000Z")),
                     manifest=manifest, exit_code=1 if failed else 0, duration=12.4,
                     failed=failed)  # fmt: skip


def test_counted_literals() -> None:
    """One is singular, every other count plural, thousands separated; a non-count is '-'."""
    assert counted(1, "shard") == "1 shard"
    assert counted(0, "shard") == "0 shards"
    assert counted(2, "partition") == "2 partitions"
    assert counted(1843, "record") == "1,843 records"
    assert counted(1, "record") == "1 record"
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(812, "entry", "entries") == "812 entries"
    assert counted(None, "shard") == "- shards"
    assert counted(True, "shard") == "- shards"


def test_summary_line_says_1_shard_and_1_partition() -> None:
    """The one-line run summary pluralizes shards, records and failed partitions."""
    one = _result(1, 1843, ()).summary_line()
    assert one == (
        "nobb sync: complete, 1,843 records in 1 shard, 12.4s -> out/nobb/20261122T020000Z"
    )
    bad = _result(2, 1, ("a..b",)).summary_line()
    assert bad.startswith("nobb sync: INCOMPLETE (1 partition failed), 0 records in 2 shards, ")


def test_status_report_pluralizes() -> None:
    """`harvester status` text: 1 record, 1 entry, 1 partition of 1, 1 shard."""
    source = {
        "source": "nobb", "running": False, "lock_holder": None,
        "high_water": {}, "state_other": {"windows": 1},
        "last_complete_run": {"run_id": "r1", "mode": "dump", "records": 1},
        "runs": [], "problems": [],
        "resumable": {"dump": {"run_id": "r2", "partitions_done": 1, "partitions_planned": 1,
                               "shards": 1, "records": 1}, "sync": None},
    }  # fmt: skip
    text = render_status({"out": "out", "sources": [source]})
    assert "  last complete run: r1 (dump, 1 record)\n" in text
    assert "  windows: 1 entry\n" in text
    assert "  resumable dump: r2: 1 of 1 partition done, 1 shard, 1 record so far" in text
