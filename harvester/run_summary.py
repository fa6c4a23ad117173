"""A run's outcome as monitoring reads it: one exit code, the summary JSON, a Prometheus file.

``app.run_command`` writes them after the sources end: ``--summary-json`` (``write_summary``)
and ``[output] prometheus_file`` (``write_prometheus``), both atomically and without secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson

from harvester.errors import HarvesterError
from harvester.run import RunResult
from harvester.store.manifest import atomic_write

__all__ = ["exit_code", "write_prometheus", "write_summary"]


def exit_code(results: Sequence[RunResult | HarvesterError | int]) -> int:
    """The most serious exit code of ``results`` (the order is in ``docs/exit-codes.md``)."""
    codes = [r if isinstance(r, int) else r.exit_code for r in results]
    for code in (130, 3, 75, 2, 1):
        if code in codes:
            return code
    return 0


def write_summary(
    path: Path, mode: str, results: Sequence[RunResult | HarvesterError | int]
) -> None:
    """The machine-readable run summary for monitoring (atomic; no secrets)."""
    sources: list[dict[str, object]] = []
    for r in results:
        if isinstance(r, RunResult):
            m = r.manifest
            sources.append(
                {
                    "source": r.source,
                    "mode": r.mode,
                    "exit_code": r.exit_code,
                    "complete": m.complete,
                    "records": m.records,
                    "shards": len(m.shards),
                    "run_dir": str(r.run),
                    "duration_seconds": round(r.duration, 3),
                    "failed_partitions": list(r.failed),
                    "checks": dict(m.checks),
                }
            )
        elif isinstance(r, HarvesterError):
            sources.append({"error": str(r), "exit_code": r.exit_code})
    body = {"mode": mode, "exit_code": exit_code(results), "sources": sources}
    atomic_write(path, orjson.dumps(body, option=orjson.OPT_INDENT_2))


def write_prometheus(path: Path, results: Sequence[RunResult | HarvesterError | int]) -> None:
    """A node_exporter textfile-collector file with each source's last run (atomic)."""
    lines = [
        "# HELP harvester_records Records written by the last run.",
        "# TYPE harvester_records gauge",
        "# HELP harvester_complete 1 if the last run was complete.",
        "# TYPE harvester_complete gauge",
        "# HELP harvester_duration_seconds Wall time of the last run.",
        "# TYPE harvester_duration_seconds gauge",
        "# HELP harvester_last_run_timestamp_seconds When the last run finished.",
        "# TYPE harvester_last_run_timestamp_seconds gauge",
    ]
    for r in results:
        if isinstance(r, RunResult):
            label = f'{{source="{r.source}",mode="{r.mode}"}}'
            m = r.manifest
            lines += [
                f"harvester_records{label} {m.records}",
                f"harvester_complete{label} {int(m.complete)}",
                f"harvester_duration_seconds{label} {r.duration:.3f}",
                f"harvester_last_run_timestamp_seconds{label} {m.finished.timestamp():.0f}",
            ]
    atomic_write(path, ("\n".join(lines) + "\n").encode())
