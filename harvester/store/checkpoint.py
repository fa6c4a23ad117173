"""Checkpoints of an unfinished run, and what ``--resume`` does with them.

``checkpoint.json`` in a run directory lists the finalized shards, the partition plan, the
partitions whose records are all in those shards, and the positions of unfinished walks (NOBB: each
end's last key and next token, ``plan/positions.py``). It is rewritten atomically after the sink has
made records final (as partitions finish, DBK's windows a group at a time, and every
``checkpoint_seconds``), so it never names a shard that is not whole nor a partition whose records
are not in a listed shard. A crash at any moment therefore leaves a checkpoint that is true;
resuming it:

1. verifies every listed shard (size and sha256) and deletes everything else that looks like a
   shard or a temp file (records of partitions that were not finished are fetched again);
2. rebuilds the exactly-once key set from the listed shards;
3. lets the source skip the finished partitions and redo the others.

The run directory may be a bucket prefix (``storage.BucketDir``): the shards are then read back
from the bucket, and the strays deleted there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from harvester.errors import OutputError
from harvester.store.compress import decompress_shard
from harvester.store.keyset import KeySet
from harvester.store.manifest import MANIFEST, ShardInfo
from harvester.store.storage import Location, location

__all__ = ["CHECKPOINT", "Checkpoint", "find_resumable", "prepare_resume"]

CHECKPOINT = "checkpoint.json"


@dataclass(slots=True, kw_only=True)
class Checkpoint:
    """What a run has made durable so far."""

    started: str
    mode: str
    plan: list[list[str | None]] | None = None
    done: dict[str, dict[str, object]] = field(default_factory=dict)
    shards: list[ShardInfo] = field(default_factory=list)
    #: Unfinished walks' positions (source-defined JSON), true as of the listed shards.
    positions: dict[str, object] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The checkpoint's bytes as of now (what ``save`` writes)."""
        data = {
            "started": self.started,
            "mode": self.mode,
            "plan": self.plan,
            "done": self.done,
            "shards": [s.to_json() for s in self.shards],
            "positions": self.positions,
        }
        return orjson.dumps(data, option=orjson.OPT_INDENT_2)

    def save(self, run_dir: Location | Path) -> None:
        location(run_dir).write(CHECKPOINT, self.encode())

    @classmethod
    def load(cls, run_dir: Location | Path) -> Checkpoint:
        run = location(run_dir)
        try:
            raw = run.read(CHECKPOINT)
            if raw is None:
                raise FileNotFoundError(f"no {CHECKPOINT}")
            data = orjson.loads(raw)
            shards = [
                ShardInfo(s["path"], s["records"], s["bytes"], s["sha256"]) for s in data["shards"]
            ]
            positions = data.get("positions") or {}
            if not isinstance(positions, dict):
                raise TypeError("positions is not an object")
            return cls(
                started=data["started"],
                mode=data["mode"],
                plan=data["plan"],
                done=data["done"],
                shards=shards,
                positions=positions,
            )
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise OutputError(f"cannot read the checkpoint of {run}: {exc}") from exc


def find_resumable(source_dir: Location | Path, mode: str) -> Location | None:
    """The newest run of ``mode`` with a checkpoint and no complete manifest, if any."""
    src = location(source_dir)
    for name in sorted(src.entries()[0], reverse=True):
        run = src / name
        try:  # the manifest first: most runs are complete, and one read says so
            manifest = orjson.loads(run.read(MANIFEST) or b"{}")
            if manifest.get("complete"):
                continue
        except orjson.JSONDecodeError:
            pass
        if run.exists(CHECKPOINT) and Checkpoint.load(run).mode == mode:
            return run
    return None


def prepare_resume(
    run_dir: Location | Path, key_of: Callable[[bytes], int | str]
) -> tuple[Checkpoint, KeySet]:
    """Verify the listed shards, delete the rest, and rebuild the key set (see the docstring)."""
    run = location(run_dir)
    cp = Checkpoint.load(run)
    listed = {s.path for s in cp.shards}
    keys = KeySet()
    for shard in cp.shards:
        shown = run.show(shard.path)
        data = run.read(shard.path)
        if data is None:
            raise OutputError(f"{shown}: in the checkpoint but missing; cannot resume")
        if len(data) != shard.bytes or hashlib.sha256(data).hexdigest() != shard.sha256:
            raise OutputError(f"{shown}: does not match its checkpoint entry; cannot resume")
        body = decompress_shard(shard.path, data)
        for line in body.splitlines():
            keys.add(key_of(line))
    for name in run.entries()[1]:
        stray = name.startswith("part-") and name not in listed
        if stray or name.endswith(".tmp") or name == MANIFEST:
            run.delete(name)
    return cp, keys
