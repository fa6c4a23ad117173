"""``OUT/<source>/state.json``: what the last complete run left for the next sync, and its
rebuilding when it is lost to corruption.

It holds the source's high-water marks (and DBK's learned windows) and ``last_complete_run``;
only a complete dump or sync replaces it (``RunState.advance``), never a snapshot. Everything
in it can be rebuilt from the newest complete dump or sync's manifest
(``recover_source_state``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import orjson

from harvester.errors import OutputError, StateError
from harvester.store.manifest import MANIFEST
from harvester.store.storage import Location, location

__all__ = ["STATE", "load_source_state", "recover_source_state"]

#: The source directory's state file: what the last complete run left for the next sync.
STATE = "state.json"
log = logging.getLogger("harvester.run")


def load_source_state(source_dir: Location | Path) -> dict[str, object]:
    """``OUT/<source>/state.json`` as a dict ({} if there is none; OutputError if unreadable)."""
    src = location(source_dir)
    raw = src.read(STATE)
    if raw is None:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise OutputError(f"cannot read {src.show(STATE)}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _newest_complete(source_dir: Location) -> tuple[str, dict[str, object]] | None:
    """The newest complete dump or sync under ``source_dir``: its run id and manifest."""
    for name in sorted(source_dir.entries()[0], reverse=True):
        try:
            manifest = orjson.loads((source_dir / name).read(MANIFEST) or b"{}")
        except (orjson.JSONDecodeError, OutputError):
            continue
        if not isinstance(manifest, dict) or manifest.get("complete") is not True:
            continue
        if manifest.get("mode") in ("dump", "sync"):  # a snapshot moves no high-water mark
            return name, manifest
    return None


def recover_source_state(
    source_dir: Location,
    *,
    source: str,
    mode: str,
    rebuild: Callable[[Mapping[str, object]], dict[str, object]],
) -> dict[str, object]:
    """``state.json``, or where it is not a JSON object, rebuilt and rewritten (a warning).

    Everything in it comes from the newest complete dump or sync: ``rebuild`` turns that run's
    manifest into the source's entries, and ``last_complete_run`` names the run. With no such
    run, a sync cannot know where to start: ``StateError`` (exit 2) before any run directory
    is made; a dump starts from nothing and writes a new state.json when complete.
    """
    raw = source_dir.read(STATE)
    if raw is None:
        return {}
    try:
        data = orjson.loads(raw)
        if isinstance(data, dict):
            return data
        why = "is not a JSON object"
    except orjson.JSONDecodeError as exc:
        why = f"is not valid JSON ({exc})"
    shown = source_dir.show(STATE)
    found = _newest_complete(source_dir)
    if found is None:
        fix = f"delete it and run 'harvester dump {source}', which writes a new one"
        if mode != "dump":
            raise StateError(f"{shown} {why} and no complete run to rebuild it from: {fix}")
        log.warning("%s: %s %s; the dump starts without it", source, shown, why)
        return {}
    run_id, manifest = found
    state = rebuild(manifest)
    state["last_complete_run"] = {
        "run_id": run_id,
        "mode": manifest["mode"],
        "records": manifest.get("records"),
    }
    source_dir.write(STATE, orjson.dumps(state, option=orjson.OPT_INDENT_2))
    log.warning(
        "%s: %s %s; rebuilt from %s's manifest", source, shown, why, source_dir.show(run_id)
    )
    return state
