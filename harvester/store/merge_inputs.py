"""What ``harvester compact`` merges: the complete runs of a source directory, and the base.

The base is the newest complete snapshot or dump, whichever covers more recent runs (a
snapshot covers the newest run it merged, a dump itself); the inputs are the base and every
complete sync newer than what it covers, in run order (run ids sort by time). A sync resumed
and completed after a snapshot began is therefore merged by the next one, not lost.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from harvester.errors import OutputError
from harvester.store.manifest import MANIFEST
from harvester.store.storage import Location

__all__ = ["SNAPSHOT", "Input", "find_inputs", "planned_inputs"]

#: The mode of a run written by ``harvester compact``.
SNAPSHOT = "snapshot"


@dataclass(frozen=True, slots=True)
class Input:
    """One complete run to merge."""

    run_id: str
    mode: str
    where: Location
    manifest: dict[str, Any]
    sha256: str

    @property
    def covers(self) -> str:
        """The newest run whose records this one holds (a snapshot: the newest it merged)."""
        if self.mode != SNAPSHOT:
            return self.run_id
        return max((str(b.get("run_id")) for b in self.manifest.get("bases") or []), default="")

    @property
    def as_of(self) -> str:
        """The high-water mark of the newest run merged (a run's start)."""
        if self.mode == SNAPSHOT:
            return str((self.manifest.get("checks") or {}).get("as_of", ""))
        return str(self.manifest.get("started", ""))

    def base_entry(self) -> dict[str, object]:
        return {"run_id": self.run_id, "mode": self.mode, "sha256": self.sha256}


def _complete(source_dir: Location) -> list[Input]:
    found = []
    for name in sorted(source_dir.entries()[0]):
        where = source_dir / name
        raw = where.read(MANIFEST)
        if raw is None:
            continue
        try:
            manifest = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(manifest, dict) and manifest.get("complete") is True:
            sha = hashlib.sha256(raw).hexdigest()
            found.append(Input(name, str(manifest.get("mode")), where, manifest, sha))
    return found


def find_inputs(source_dir: Location) -> tuple[Input | None, list[Input]]:
    """The base (None: no complete dump yet) and the complete syncs after it, in run order."""
    runs = _complete(source_dir)
    bases = [r for r in runs if r.mode in ("dump", SNAPSHOT)]
    if not bases:
        return None, []
    base = max(bases, key=lambda r: (r.covers, r.mode == SNAPSHOT, r.run_id))
    return base, [r for r in runs if r.mode == "sync" and r.run_id > base.covers]


def planned_inputs(source_dir: Location, plan: list[list[str | None]]) -> list[Input]:
    """A resumed snapshot's inputs, as its checkpoint names them (the same bytes, or an error)."""
    by_id = {r.run_id: r for r in _complete(source_dir)}
    inputs = []
    for run_id, sha in plan:
        found = by_id.get(str(run_id))
        if found is None or found.sha256 != sha:
            raise OutputError(
                f"{source_dir.show(str(run_id))}: changed or gone since the "
                "snapshot began; start a new one (without --resume)"
            )
        inputs.append(found)
    return inputs
