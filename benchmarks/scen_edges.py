"""``edges``: what the window-edge rules (harvester/plan/edges.py) cost under the default reading.

A cold DBK dump (no learned windows; 30k products, cap 2000) and a NOBB dump (200k items,
pageSize 10000, the default config) against the simulator's default reading, each run with the
edge reading measured (what harvester does) and with it assumed known (the reading the simulator
uses, told to the client: no overlap, no boundary walks), interleaved in one run. The row is the
requests each sent (and wall seconds beside); ratio = assumed / measured, so 0.97 means 3 % more
requests for being exact under every reading. One uncounted warm-up dump goes first; then
``2 × rounds`` dumps per side (2 with ``--quick``), alternating which side goes first. A last
row per source runs once against ``from`` read as exclusive: the requests exactness costs there,
and how many records the assumed default reading would have lost (its run says complete).

    python -m benchmarks --only edges
    python -m benchmarks.scen_edges          # the same, printed on its own
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.suite import Row, median, render_table, simulator, size

__all__ = ["edges"]

BASE = "the reading assumed known (no overlap, no boundary walks)"


async def _dump(
    source: str, url: str, out: Path, assume: tuple[bool, bool] | None
) -> dict[str, Any]:
    from harvester.config import DbkConfig, NobbConfig, OutputConfig, Secret
    from harvester.progress import Progress
    from harvester.run import run_source
    from harvester.sources.dbk import DbkSource
    from harvester.sources.nobb import NobbSource

    user, password = Secret("harvester"), Secret("harvester")
    src: DbkSource | NobbSource
    if source == "dbk":
        src = DbkSource(DbkConfig(base_url=url, username=user, password=password, rate_limit="0",
                                  workers=1, accept_encoding="identity"),
                        assume_edges=assume)  # fmt: skip
    else:
        src = NobbSource(NobbConfig(base_url=url, username=user, password=password,
                                    rate_limit="0", accept_encoding="identity"),
                         assume_edges=assume)  # fmt: skip
    progress = Progress(source=source)
    t = time.perf_counter()
    result = await run_source(src, mode="dump", output=OutputConfig(compression="none"),
                              out_dir=out, config_digest="bench", progress=progress)  # fmt: skip
    secs = time.perf_counter() - t
    return {"n": result.manifest.records, "complete": result.manifest.complete,
            "requests": progress.requests, "secs": secs,
            "edges": result.manifest.checks.get("edges")}  # fmt: skip


def _once(source: str, url: str, assume: tuple[bool, bool] | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_dump(source, url, Path(tmp), assume))


def edges(quick: bool, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """Requests (and seconds) of a DBK and a NOBB dump, edge reading measured vs assumed."""
    products, items = (3_000, 20_000) if quick else (30_000, 200_000)
    cases = {
        "dbk": (("--dbk-products", str(products), "--no-bulk-second"), (True, False), products),
        "nobb": (("--nobb-items", str(items)), (True, True), items),
    }
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    for source, (flags, known, n) in cases.items():
        with simulator(*flags, "--rate-limit", "0") as url:
            _once(source, url, known)  # warm-up (imports, the simulator's caches), not counted
            runs: dict[str, list[dict[str, Any]]] = {"measured": [], "assumed": []}
            for i in range(2 if quick else 2 * rounds):
                # Alternate which goes first, so neither gains from going second.
                for name in ("measured", "assumed")[:: 1 if i % 2 == 0 else -1]:
                    runs[name].append(_once(source, url, None if name == "measured" else known))
        for name, rs in runs.items():
            assert all(int(r["n"]) == n and r["complete"] for r in rs), (source, name, rs)
        h, b = runs["measured"], runs["assumed"]
        what = "products" if source == "dbk" else "items"
        case = f"{source} dump, {size(n)} {what}, default reading"
        note = (f"{source}: wall s measured {median(h, 'secs'):.2f} vs assumed "
                f"{median(b, 'secs'):.2f}; reading found: {h[0]['edges']}")  # fmt: skip
        rows.append(Row(scenario="edges", case=case, metric="requests",
                        harvester=median(h, "requests"), baseline=median(b, "requests"),
                        baseline_name=BASE, runs={"measured": h, "assumed": b},
                        note=note))  # fmt: skip
        rows.append(Row(scenario="edges", case=case, metric="s (wall)",
                        harvester=median(h, "secs"), baseline=median(b, "secs"),
                        baseline_name=BASE))  # fmt: skip
        extra[source] = {"requests_measured": [r["requests"] for r in h],
                         "requests_assumed": [r["requests"] for r in b]}  # fmt: skip
        # Another reading (from exclusive), once each: what exactness costs there, and what
        # the default reading's assumption, told to a client, would have lost.
        other = "--dbk-from-exclusive" if source == "dbk" else "--nobb-from-exclusive"
        with simulator(*flags, "--rate-limit", "0", other) as url:
            m, a = _once(source, url, None), _once(source, url, known)
        assert m["complete"] and int(m["n"]) == n, m
        rows.append(Row(scenario="edges", case=f"{source} dump, {size(n)} {what}, {other[2:]}",
                        metric="requests", harvester=m["requests"], baseline=a["requests"],
                        baseline_name=BASE, runs={"measured": [m], "assumed": [a]},
                        note=f"{other[2:]}: the assumed reading wrote {a['n']:,} of {n:,} "
                             f"(complete={a['complete']}); measured: {m['edges']}"))  # fmt: skip
        extra[source]["other_reading"] = {"measured": m, "assumed": a}
    return rows, extra


if __name__ == "__main__":
    got, _ = edges("--quick" in sys.argv, 2)
    print(render_table(got))
