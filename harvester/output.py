"""Reading harvester's output from Python: verified shards, records, the latest run.

>>> # from harvester.output import read_run, verify_run
>>> # manifest = verify_run(Path("out/nobb/20261122T020000Z"))   # checks every shard
>>> # for item in read_run(Path("out/nobb/20261122T020000Z")):  # dicts, one per record
>>> #     ...

``verify_run`` checks every shard listed in the manifest against its sha256, byte size and
record count, and that no unlisted ``part-*`` file sits beside them; any mismatch is an
``OutputError`` naming the shard.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from harvester.errors import OutputError
from harvester.manifest import read_manifest

__all__ = ["latest_run", "read_lines", "read_run", "verify_run"]


def _shards(manifest: dict[str, object]) -> list[dict[str, Any]]:
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise OutputError("manifest has no shard list")
    return shards


def decompress_shard(path: Path, data: bytes) -> bytes:
    """A shard's NDJSON bytes, whatever its compression (by file name)."""
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        import zstandard

        return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))
    return data


def verify_run(run_dir: Path) -> dict[str, object]:
    """Check the run's shards against its manifest; returns the manifest."""
    manifest = read_manifest(run_dir)
    listed = set()
    for shard in _shards(manifest):
        path = run_dir / str(shard["path"])
        listed.add(path.name)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise OutputError(f"{path}: listed in the manifest but missing") from exc
        if len(data) != shard["bytes"]:
            raise OutputError(f"{path}: {len(data)} bytes, the manifest says {shard['bytes']}")
        if hashlib.sha256(data).hexdigest() != shard["sha256"]:
            raise OutputError(f"{path}: sha256 does not match the manifest")
        try:
            records = decompress_shard(path, data).count(b"\n")
        except (OSError, EOFError) as exc:
            raise OutputError(f"{path}: cannot decompress: {exc}") from exc
        if records != shard["records"]:
            raise OutputError(f"{path}: {records} records, the manifest says {shard['records']}")
    extra = sorted(p.name for p in run_dir.glob("part-*") if p.name not in listed)
    if extra:
        raise OutputError(f"{run_dir}: shards not in the manifest: {', '.join(extra)}")
    return manifest


def read_lines(run_dir: Path, *, verify: bool = True) -> Iterator[bytes]:
    """Every record's JSON line (without the newline), shard by shard, in manifest order."""
    manifest = verify_run(run_dir) if verify else read_manifest(run_dir)
    for shard in _shards(manifest):
        path = run_dir / str(shard["path"])
        yield from decompress_shard(path, path.read_bytes()).splitlines()


def read_run(run_dir: Path, *, verify: bool = True) -> Iterator[dict[str, Any]]:
    """Every record of a run as a dict."""
    for line in read_lines(run_dir, verify=verify):
        yield orjson.loads(line)


def latest_run(source_dir: Path, *, complete_only: bool = True) -> Path | None:
    """The newest run directory of a source (by run id), complete ones only by default."""
    for run in sorted((p for p in source_dir.iterdir() if p.is_dir()), reverse=True):
        try:
            manifest = read_manifest(run)
        except OutputError:
            continue
        if manifest.get("complete") or not complete_only:
            return run
    return None
