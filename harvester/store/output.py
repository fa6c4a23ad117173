"""Reading harvester's output from Python: verified shards, records, the latest run, the
current snapshot (``current_run``).

>>> # from harvester.output import read_run, verify_run
>>> # manifest = verify_run(Path("out/nobb/20261122T020000Z"))   # checks every shard
>>> # for item in read_run(Path("out/nobb/20261122T020000Z")):  # dicts, one per record
>>> #     ...

``verify_run`` checks every shard listed in the manifest against its sha256, byte size and
record count, and that no unlisted ``part-*`` file sits beside them; any mismatch is an
``OutputError`` naming the shard. Every function takes a local run directory or its
``s3://bucket/prefix/<source>/<run_id>`` URL alike (credentials from the AWS environment).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from harvester.errors import OutputError
from harvester.plural import counted
from harvester.store.compress import decompress_shard
from harvester.store.manifest import read_manifest
from harvester.store.storage import Location, location

__all__ = ["CURRENT", "current_run", "latest_run", "read_lines", "read_run", "verify_run"]

#: ``OUT/<source>/current.json``: the newest complete snapshot (``harvester compact``).
CURRENT = "current.json"


def _shards(manifest: dict[str, object]) -> list[dict[str, Any]]:
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise OutputError("manifest has no shard list")
    return shards


def _shard_bytes(run: Location, name: str, why: str) -> bytes:
    data = run.read(name)
    if data is None:
        raise OutputError(f"{run.show(name)}: {why} but missing")
    return data


def verify_run(run_dir: Location | Path | str) -> dict[str, object]:
    """Check the run's shards against its manifest; returns the manifest."""
    run = location(run_dir)
    manifest = read_manifest(run)
    listed = set()
    for shard in _shards(manifest):
        name = str(shard["path"])
        shown = run.show(name)
        listed.add(name)
        data = _shard_bytes(run, name, "listed in the manifest")
        if len(data) != shard["bytes"]:
            raise OutputError(f"{shown}: {len(data)} bytes, the manifest says {shard['bytes']}")
        if hashlib.sha256(data).hexdigest() != shard["sha256"]:
            raise OutputError(f"{shown}: sha256 does not match the manifest")
        try:
            records = decompress_shard(name, data).count(b"\n")
        except (OSError, EOFError) as exc:
            raise OutputError(f"{shown}: cannot decompress: {exc}") from exc
        if records != shard["records"]:
            found = counted(records, "record")
            raise OutputError(f"{shown}: {found}, the manifest says {shard['records']}")
    extra = sorted(n for n in run.entries()[1] if n.startswith("part-") and n not in listed)
    if extra:
        raise OutputError(f"{run}: shards not in the manifest: {', '.join(extra)}")
    return manifest


def read_lines(run_dir: Location | Path | str, *, verify: bool = True) -> Iterator[bytes]:
    """Every record's JSON line (without the newline), shard by shard, in manifest order."""
    run = location(run_dir)
    manifest = verify_run(run) if verify else read_manifest(run)
    for shard in _shards(manifest):
        name = str(shard["path"])
        yield from decompress_shard(name, _shard_bytes(run, name, "listed")).splitlines()


def read_run(run_dir: Location | Path | str, *, verify: bool = True) -> Iterator[dict[str, Any]]:
    """Every record of a run as a dict."""
    for line in read_lines(run_dir, verify=verify):
        yield orjson.loads(line)


def latest_run(
    source_dir: Location | Path | str, *, complete_only: bool = True
) -> Path | str | None:
    """The newest run of a source (by run id), complete ones only by default; None if none.

    A local source directory gives the run's ``Path``, a bucket prefix its ``s3://`` URL: either
    goes straight into ``read_run`` or ``verify_run``.
    """
    src = location(source_dir)
    for name in sorted(src.entries()[0], reverse=True):
        run = src / name
        try:
            manifest = read_manifest(run)
        except OutputError:
            continue
        if manifest.get("complete") or not complete_only:
            return run.local if run.local is not None else str(run)
    return None


def current_run(source_dir: Location | Path | str) -> Path | str | None:
    """The run ``OUT/<source>/current.json`` names: the current snapshot (None if none yet).

    The pointer is replaced atomically once a snapshot is complete, so no listing is needed;
    the result goes straight into ``read_run`` or ``verify_run`` (a local ``Path`` or, in a
    bucket, its ``s3://`` URL). ``OutputError`` if the pointer is unreadable.
    """
    src = location(source_dir)
    raw = src.read(CURRENT)
    if raw is None:
        return None
    try:
        run_id = orjson.loads(raw)["run_id"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise OutputError(f"cannot read {src.show(CURRENT)}: {exc}") from exc
    run = src / str(run_id)
    return run.local if run.local is not None else str(run)
