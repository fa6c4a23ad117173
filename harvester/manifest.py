"""``manifest.json``: the last file of a run, written atomically, and the run id.

A manifest lists every shard of the run with its record count, byte size and sha256, whether
the run is complete, when it started and finished, the config digest (no secrets), per-partition
results and cross-checks. It is written to a temp file, fsynced and renamed, so a reader sees the
old manifest, none, or the new one: never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from harvester import __version__
from harvester.errors import OutputError
from harvester.sink import ShardInfo, fsync_dir

__all__ = ["MANIFEST", "Manifest", "atomic_write", "new_run_id", "read_manifest", "write_manifest"]

MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """What a run produced; ``to_json`` is the manifest file's content."""

    source: str
    mode: str
    complete: bool
    shards: tuple[ShardInfo, ...]
    started: datetime
    finished: datetime
    config_digest: str
    run_id: str = ""
    compression: str = "gzip"
    partitions: Mapping[str, object] = field(default_factory=dict)
    checks: Mapping[str, object] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.shards)

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "mode": self.mode,
            "complete": self.complete,
            "records": self.records,
            "shards": [s.to_json() for s in self.shards],
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "config_digest": self.config_digest,
            "run_id": self.run_id,
            "compression": self.compression,
            "partitions": dict(self.partitions),
            "checks": dict(self.checks),
            "harvester_version": __version__,
        }


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via temp file, fsync and rename (OutputError on failure)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror}") from exc


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    """Write ``run_dir/manifest.json`` atomically."""
    atomic_write(run_dir / MANIFEST, orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2))


def read_manifest(run_dir: Path) -> dict[str, object]:
    """The manifest of a run as a dict (OutputError if missing or not JSON)."""
    path = run_dir / MANIFEST
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise OutputError(f"no manifest in {run_dir}: the run is unfinished") from exc
    except (OSError, orjson.JSONDecodeError) as exc:
        raise OutputError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise OutputError(f"{path} is not a JSON object")
    return data


def new_run_id(now: datetime, existing: Sequence[str] = ()) -> str:
    """A sortable UTC run id like ``20261122T020000Z``, suffixed ``-1``, ``-2`` if taken."""
    base = now.strftime("%Y%m%dT%H%M%SZ")
    if base not in existing:
        return base
    n = 1
    while f"{base}-{n}" in existing:
        n += 1
    return f"{base}-{n}"
