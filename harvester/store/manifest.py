"""``manifest.json``: the last file of a run, written atomically, and the run id.

A manifest lists every shard of the run with its record count, byte size and sha256, whether
the run is complete, when it started and finished, the config digest (no secrets), per-partition
results and cross-checks. It is written to a temp file, fsynced and renamed, so a reader sees the
old manifest, none, or the new one: never half of one.

``ShardInfo`` is one listed shard; this module owns it (the sink makes them, checkpoints and
manifests list them), so nothing here imports the sink.

``transport`` says how the source reached its API: connections opened, scheme, proxy (its URL
without credentials, or null).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from harvester import __version__
from harvester.errors import OutputError
from harvester.store.storage import Location, atomic_write, location

__all__ = [
    "MANIFEST",
    "Manifest",
    "ShardInfo",
    "atomic_write",
    "new_run_id",
    "read_manifest",
    "write_manifest",
]

MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One finalized shard, as listed in the checkpoint and the manifest."""

    path: str
    records: int
    bytes: int
    sha256: str

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "records": self.records,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


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
    #: How the source reached its API: connections opened, scheme, proxy (no credentials).
    transport: Mapping[str, object] = field(default_factory=dict)
    #: The API's rate limit as inferred, and what it cost (``RateLimiter.report``).
    rate_limit: Mapping[str, object] = field(default_factory=dict)
    #: A snapshot's inputs: each merged run's run_id, mode and its manifest.json's sha256.
    bases: Sequence[Mapping[str, object]] = ()

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
            "transport": dict(self.transport),
            "rate_limit": dict(self.rate_limit),
            "harvester_version": __version__,
            **({"bases": [dict(b) for b in self.bases]} if self.mode == "snapshot" else {}),
        }


def write_manifest(run_dir: Location | Path, manifest: Manifest) -> None:
    """Write ``run_dir/manifest.json`` atomically (a directory or a bucket prefix)."""
    data = orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2)
    location(run_dir).write(MANIFEST, data)


def read_manifest(run_dir: Location | Path | str) -> dict[str, object]:
    """The manifest of a run as a dict (OutputError if missing or not JSON)."""
    run = location(run_dir)
    raw = run.read(MANIFEST)
    if raw is None:
        raise OutputError(f"no manifest in {run}: the run is unfinished")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise OutputError(f"cannot read {run.show(MANIFEST)}: {exc}") from exc
    if not isinstance(data, dict):
        raise OutputError(f"{run.show(MANIFEST)} is not a JSON object")
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
