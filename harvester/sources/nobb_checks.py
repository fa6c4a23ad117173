"""The cross-checks of a NOBB run: every record written accounted for, or the difference named.

``NobbRun.account`` (``nobb_run.py``) calls ``cross_check`` once the walks are done; the figures
and notes land in the run's ``checks`` (the manifest's ``checks`` block).
"""

from __future__ import annotations

import logging

from harvester.plan.edges import DayEdges
from harvester.plan.walk_budget import WalkBudget
from harvester.sources.base import RunContext

__all__ = ["cross_check"]

log = logging.getLogger("harvester.nobb")


def cross_check(
    ctx: RunContext, planned: int | None, *, edges: DayEdges, budget: WalkBudget
) -> None:
    """The cross-checks: every record written is accounted for, or the difference named."""
    results = ctx.partitions.values()
    # A cut partition's items are counted by its pieces.
    main = [
        r for r in results if not any(r.get(k) for k in ("catch_up", "edge_fill", "split_into"))
    ]
    hits = sum(int(str(r.get("total_hits", 0))) for r in main)
    only = {
        kind: sum(int(str(r.get("asc_written", 0))) for r in results if r.get(kind))
        for kind in ("catch_up", "edge_fill")
    }
    written = ctx.records_before + ctx.progress.records  # a resumed run's too
    checks = ctx.checks
    checks["x_totalHits_sum"] = hits
    checks["written"] = written
    checks["difference"] = written - hits
    checks["catch_up_written"] = only["catch_up"]
    checks["edge_fill_written"] = only["edge_fill"]
    checks["edges"] = edges.describe()
    checks["tokens"] = budget.describe()
    checks["accepted_202"] = ctx.progress.accepted  # pages answered 202 and asked again
    notes = [str(checks["note"])] if checks.get("note") else []  # e.g. newer versions kept
    if only["edge_fill"]:
        notes.append(
            f"{only['edge_fill']} items only the boundary walks found (an end of "
            "from/to is exclusive)"
        )
    if only["catch_up"]:
        notes.append(
            f"{only['catch_up']} items first written by the catch-up (changed during the run)"
        )
    other = written - hits - only["edge_fill"] - only["catch_up"]
    if other:
        notes.append(
            f"{other:+} items the partitions' x-totalHits do not explain (counts "
            "changed while walking)"
        )
    if planned is not None:
        checks["planned_total"] = planned
        missing = planned - written
        if missing > 0:
            checks["unaccounted"] = missing
            notes.append(
                f"{missing} items of the catalogue's x-totalHits at planning were "
                "not written: removed during the run, or lost"
            )
            log.warning("nobb: %d items of the planned total were not written", missing)
    if notes:
        checks["note"] = "; ".join(notes)
