"""``harvester status``: what an output directory holds, read without changing anything.

``collect_status(out_dir, last=5)`` returns a JSON-ready dict; ``--json`` prints it as is, and
otherwise ``render_status`` (``status_report.py``) writes it as text::

    {"out": "OUT", "sources": [{"source": "nobb", "dir": "OUT/nobb",
        "running": false, "lock_holder": null,   # lock held by a live run: "pid N since T"
        "high_water": {"high_water": "..."},     # state.json's scalar entries
        "last_complete_run": {"run_id", "mode", "records"} | null,   # state.json's
        "state_other": {"windows": 812},         # state.json's other entries, by size
        "runs": [{"run_id", "mode", "status", "complete", "records", "shards",
                  "started", "finished", "duration_seconds"}],   # newest ``last``, newest first
        "resumable": {"dump": null | {...}, "sync": null | {...}, "snapshot": null | {...}},
        "current": null | {"run_id", "as_of", "records"},   # current.json: the newest snapshot
        "unmerged_syncs": 0,                     # complete syncs newer than what it merged
        "problems": ["OUT/nobb/X/manifest.json: not valid JSON (...)"]}]}

A run's ``status``: ``complete``/``incomplete`` (its manifest says), ``crashed`` (a checkpoint
and no manifest: killed or crashed), ``running`` (the same while the lock is held, for the run
whose checkpoint was written last), ``empty`` (neither file), ``unreadable`` (a file that is
not a readable JSON object, named in ``problems``). Without a manifest, ``records``/``shards``
are the checkpoint's so far and ``finished`` is null.

``resumable[mode]`` is the run ``harvester <mode> <source> --resume`` would continue (for
``snapshot``: ``harvester compact <source> --resume``)
(``checkpoint.find_resumable``): ``run_id``, ``started``, ``partitions_done`` (DBK: windows),
``partitions_planned`` (``PLANNED`` sources with a plan, else null), ``shards``, ``records``;
for a snapshot, ``partitions_done`` and ``partitions_planned`` count its input runs.
If ``--resume`` would fail on a corrupt checkpoint, it is null and ``problems`` says why.

Nothing is written. The lock is tested with a non-blocking shared ``flock`` on a read-only
descriptor, released at once (the lock file is never created); a run starting in that instant
exits 75, as beside any other run. ``OUT`` may be ``s3://bucket/prefix``: the same report, read
from the bucket, a run being live while its lock object's lease has not expired. A source
directory is a directory under OUT holding ``state.json``, ``.lock`` or a run directory (with
``manifest.json`` or ``checkpoint.json``).
"""

from __future__ import annotations

import argparse
import fcntl
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from harvester.errors import HarvesterError, OutputError
from harvester.status_report import render_status
from harvester.store.checkpoint import CHECKPOINT, Checkpoint, find_resumable
from harvester.store.lease import LOCK, lease_holder
from harvester.store.lock import RunLock
from harvester.store.manifest import MANIFEST
from harvester.store.merge_inputs import find_inputs
from harvester.store.output import CURRENT
from harvester.store.state_file import STATE
from harvester.store.storage import BucketDir, Location, location

__all__ = ["collect_status", "render_status", "run"]

MODES = ("dump", "sync", "snapshot")
#: Sources whose checkpoint ``plan`` lists their partitions (DBK's plan is one time range, cut
#: into windows as the run goes, so its total is not known in advance).
PLANNED = frozenset({"nobb"})


def _read_json(where: Location, name: str, problems: list[str]) -> dict[str, Any] | None:
    """A JSON object file, or None (missing: silently; unreadable: a line in ``problems``)."""
    path = where.show(name)
    try:
        raw = where.read(name)
        if raw is None:
            return None
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        problems.append(f"{path}: not valid JSON ({exc})")
        return None
    except OSError as exc:
        reason = exc.strerror if exc.strerror and not isinstance(exc, OutputError) else exc
        problems.append(f"{path}: cannot read ({reason})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path}: not a JSON object")
        return None
    return data


def lock_holder(source_dir: Location | Path) -> str | None:
    """Who holds ``source_dir``'s run lock ("" if unnamed), or None when it is free."""
    where = location(source_dir)
    if isinstance(where, BucketDir):
        return lease_holder(where)
    assert where.local is not None
    source_dir = where.local
    try:
        with open(RunLock(source_dir).path, encoding="utf-8") as fh:  # read-only: never created
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return fh.read().strip()
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def _when(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def _run(run_dir: Location, problems: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": run_dir.name,
        "mode": None,
        "status": "empty",
        "complete": False,
        "records": None,
        "shards": None,
        "started": None,
        "finished": None,
        "duration_seconds": None,
    }
    seen = len(problems)
    manifest = _read_json(run_dir, MANIFEST, problems)
    bad_manifest = len(problems) > seen
    cp = None if manifest is not None else _read_json(run_dir, CHECKPOINT, problems)
    source = manifest if manifest is not None else cp
    if source is not None:
        shards = source.get("shards")
        shards = shards if isinstance(shards, list) else []
        counts = [s.get("records") for s in shards if isinstance(s, dict)]
        records = sum(n for n in counts if isinstance(n, int))
        row.update(
            mode=source.get("mode"),
            started=source.get("started"),
            shards=len(shards),
            records=source.get("records", records),
        )
    if manifest is not None:
        complete = manifest.get("complete") is True
        row.update(
            status="complete" if complete else "incomplete",
            complete=complete,
            finished=manifest.get("finished"),
        )
        start, end = _when(row["started"]), _when(row["finished"])
        if start is not None and end is not None:
            row["duration_seconds"] = round((end - start).total_seconds(), 3)
    elif bad_manifest or len(problems) > seen:
        row["status"] = "unreadable"
    elif cp is not None:
        row["status"] = "crashed"
    return row


def _mark_running(source_dir: Location, runs: list[dict[str, Any]]) -> None:
    """While the lock is held, the unfinished run whose checkpoint was written last is live."""

    def written(row: dict[str, Any]) -> tuple[float, str]:
        try:
            files = (source_dir / row["run_id"]).entries()[1]
        except OSError:
            return 0.0, row["run_id"]
        return files.get(CHECKPOINT, 0.0), row["run_id"]

    unfinished = [r for r in runs if r["status"] == "crashed"]
    if unfinished:
        max(unfinished, key=written)["status"] = "running"


def _resumable(source_dir: Location, mode: str, problems: list[str]) -> dict[str, Any] | None:
    try:
        run_dir = find_resumable(source_dir, mode)
        cp = Checkpoint.load(run_dir) if run_dir is not None else None
    except (OutputError, OSError, ValueError, AttributeError) as exc:
        problems.append(f"{mode} --resume would fail in {source_dir}: {exc}")
        return None
    if run_dir is None or cp is None:
        return None
    # A snapshot's plan lists the runs it merges, and done the ones merged so far.
    parts = source_dir.name in PLANNED or mode == "snapshot"
    planned = len(cp.plan) if cp.plan is not None and parts else None
    return {
        "run_id": run_dir.name,
        "started": cp.started,
        "partitions_done": len(cp.done),
        "partitions_planned": planned,
        "shards": len(cp.shards),
        "records": sum(s.records for s in cp.shards),
    }


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _is_source(path: Location) -> bool:
    dirs, files = path.entries()
    if STATE in files or LOCK in files:
        return True
    return any((path / d).exists(MANIFEST) or (path / d).exists(CHECKPOINT) for d in dirs)


def _source(source_dir: Location, last: int) -> dict[str, Any]:
    problems: list[str] = []
    holder = lock_holder(source_dir)
    state = _read_json(source_dir, STATE, problems) or {}
    lcr = state.get("last_complete_run")
    dirs = sorted((d for d in source_dir.entries()[0] if not d.startswith(".")), reverse=True)
    runs = [_run(source_dir / d, problems) for d in dirs[: max(last, 0)]]
    if holder is not None:
        _mark_running(source_dir, runs)
    other = {k: len(v) for k, v in state.items() if not _scalar(v) and k != "last_complete_run"}
    resumable = {mode: _resumable(source_dir, mode, problems) for mode in MODES}
    current, unmerged = _current(source_dir, problems)
    return {
        "source": source_dir.name,
        "dir": str(source_dir),
        "running": holder is not None,
        "lock_holder": holder,
        "high_water": {k: v for k, v in state.items() if _scalar(v)},
        "last_complete_run": lcr if isinstance(lcr, dict) else None,
        "state_other": other,
        "runs": runs,
        "resumable": resumable,
        "problems": problems,
        "current": current,
        "unmerged_syncs": unmerged,
    }


def _current(source_dir: Location, problems: list[str]) -> tuple[dict[str, Any] | None, int]:
    """``current.json`` (None if no snapshot yet) and how many complete syncs it does not hold."""
    current = _read_json(source_dir, CURRENT, problems)
    try:
        base, syncs = find_inputs(source_dir)
    except OSError as exc:
        problems.append(f"{source_dir}: cannot list the runs to merge ({exc})")
        return current, 0
    return current, len(syncs) if base is not None else 0


def collect_status(out_dir: Location | Path | str, *, last: int = 5) -> dict[str, Any]:
    """Every source directory under ``out_dir``: see the module docstring for the shape."""
    out = location(out_dir)
    dirs = [out / d for d in sorted(out.entries()[0]) if not d.startswith(".")]
    return {"out": str(out), "sources": [_source(p, last) for p in dirs if _is_source(p)]}


def run(args: argparse.Namespace) -> int:
    """``harvester status --out DIR [--json] [--last N]``: 0, or 2 if OUT is not a directory."""
    out_arg: Path | str = args.out
    try:
        out = location(out_arg)
        if out.local is not None and not out.is_dir():
            what = "does not exist" if not out.local.exists() else "is not a directory"
            print(f"error: status: output directory {out} {what}", file=sys.stderr)
            return 2
        data = collect_status(out, last=args.last)
    except HarvesterError as exc:
        print(f"error: status: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: status: cannot read {out_arg}: {exc.strerror}", file=sys.stderr)
        return 2
    if args.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render_status(data))
    return 0
