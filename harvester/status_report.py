"""``harvester status``'s human-readable report: one block per source of ``collect_status``.

Each block: the lock, the high-water marks, the last complete run, the current snapshot and the
syncs not merged into it, state.json's other entries, a table of the newest runs, what
``--resume`` would continue for each mode (and the command to do it), and the problems found.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from harvester.plural import counted

__all__ = ["render_status"]

#: The command that resumes each mode.
_COMMAND = {"dump": "dump", "sync": "sync", "snapshot": "compact"}


def render_status(data: dict[str, Any]) -> str:
    """The human-readable report of ``collect_status``'s dict, one block per source."""
    lines = [f"output directory {data['out']}"]
    if not data["sources"]:
        lines.append("  no source directories (nothing harvested yet)")
    for src in data["sources"]:
        lines += _source_block(src)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _source_block(src: dict[str, Any]) -> list[str]:
    """One source: its lock, marks, last run, snapshot, state, runs, resumables, problems."""
    lock = f"running ({src['lock_holder'] or 'lock held'})" if src["running"] else "idle"
    lines = ["", f"{src['source']}: {lock}"]
    marks = [f"  {k}: {v}" for k, v in src["high_water"].items()]
    lines += marks or ["  high-water marks: none"]
    lcr = src["last_complete_run"]
    if lcr is not None:
        lines.append(
            f"  last complete run: {lcr.get('run_id')} ({lcr.get('mode')}, "
            f"{counted(lcr.get('records'), 'record')})"
        )
    cur, unmerged = src.get("current"), src.get("unmerged_syncs", 0)
    if cur is not None:
        lines.append(
            f"  current snapshot: {cur.get('run_id')} "
            f"(as of {_short(cur.get('as_of'))}, "
            f"{counted(cur.get('records'), 'record')}), "
            f"{counted(unmerged, 'sync')} not merged yet"
        )
    elif unmerged:
        lines.append(
            f"  no snapshot yet; {counted(unmerged, 'sync')} since the "
            "last dump (harvester compact)"
        )
    for key, size in src["state_other"].items():
        lines.append(f"  {key}: {counted(size, 'entry', 'entries')}")
    lines += _runs_table(src["runs"])
    lines += _resumable(src)
    lines += [f"  problem: {p}" for p in src["problems"]]
    return lines


def _runs_table(runs: list[dict[str, Any]]) -> list[str]:
    """The newest runs as an aligned table, or "no runs"."""
    table = [("run", "mode", "status", "records", "shards", "started", "finished", "took")]
    for r in runs:
        took = r["duration_seconds"]
        table.append(
            (
                r["run_id"],
                r["mode"] or "-",
                r["status"],
                _num(r["records"]),
                _num(r["shards"]),
                _short(r["started"]),
                _short(r["finished"]),
                f"{took:.1f}s" if isinstance(took, (int, float)) else "-",
            )
        )
    if len(table) == 1:
        return ["  no runs"]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]


def _resumable(src: dict[str, Any]) -> list[str]:
    """One line per mode a ``--resume`` would continue, with its progress and its command."""
    lines = []
    for mode, res in src["resumable"].items():
        if res is None:
            continue
        planned = res["partitions_planned"]
        done = res["partitions_done"]
        unit = "input run" if mode == "snapshot" else "partition"
        parts = f"{done} of {counted(planned, unit)}" if planned else counted(done, unit)
        lines.append(
            f"  resumable {mode}: {res['run_id']}: {parts} done, "
            f"{counted(res['shards'], 'shard')}, "
            f"{counted(res['records'], 'record')} so far "
            f"(harvester {_COMMAND[mode]} {src['source']} --resume)"
        )
    return lines


def _num(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _short(text: object) -> str:
    """An ISO time as ``YYYY-MM-DD HH:MM:SSZ`` (UTC); other text as it is; nothing as ``-``."""
    try:
        when = datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        when = None
    if when is None:
        return str(text) if text else "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if when.tzinfo else str(text)
