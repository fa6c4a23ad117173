"""NOBB scenarios: no rate limit, 200 ms latency, and scaling with catalogue size.

Every run is a full dump in a fresh process (``benchmarks.children``) against a simulator in its
own process; harvester runs as ``harvester dump`` does (uvloop), the baseline is
``benchmarks.bench_nobb.naive`` (``orjson.loads`` of each page, ``orjson.dumps`` per item, one
sequential walk). Both ask for identity encoding.

- ``nobb``: pageSize 10000, no limit; items/s and MB/s of the served bytes (a raw walk measures
  the catalogue's size once), harvester with plain and gzip-1 shards.
- ``latency``: 200 ms before each first byte, pageSize 100 so the token chain's latency is what
  binds; 1, 2, 4 and 8 partitions walked from one end and from both ends, against one
  sequential walk; ratio = sequential seconds / harvester seconds.
- ``scaling``: 100k, 300k and 1M items (one round: a 1M-item dump per side); seconds and peak
  RSS at each size, a least-squares line through (items, seconds) whose slope is printed as
  seconds per 100k items, and the peak RSS at each size (flat means the memory does not grow
  with the catalogue).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from benchmarks.bench_sim import walk_nobb
from benchmarks.children import spawn
from benchmarks.suite import Row, interleave, median, simulator, size

__all__ = ["fit", "latency", "nobb", "scaling"]

NAIVE = "naive loop: orjson.loads(page), orjson.dumps per item, one sequential walk"


def nobb(quick: bool, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """No rate limit, pageSize 10000: items/s and MB/s, plain and gzip-1 shards, vs naive."""
    items = 20_000 if quick else 200_000
    with simulator("--nobb-items", str(items)) as url:
        served = asyncio.run(walk_nobb(url))[0]
        variants = {
            "naive": lambda: spawn("nobb-naive", url=url, page_size=10_000),
            "none": lambda: spawn("nobb-harvester", url=url, compression="none"),
            "gzip": lambda: spawn("nobb-harvester", url=url, compression="gzip"),
        }
        runs = interleave(variants, 1 if quick else rounds)
    for name, rs in runs.items():
        assert all(int(r["n"]) == items for r in rs), (name, rs)
    base = runs["naive"]
    rows = []
    for shards in ("none", "gzip"):
        h = runs[shards]
        label = "none" if shards == "none" else "gzip-1"
        common: dict[str, Any] = {
            "scenario": "nobb", "case": f"{size(items)} items, no limit, shards {label}",
            "baseline_name": NAIVE, "rss_harvester_mb": median(h, "rss_mb"),
            "rss_baseline_mb": median(base, "rss_mb"),
        }  # fmt: skip
        rows.append(Row(metric="items/s", harvester=items / median(h, "secs"),
                        baseline=items / median(base, "secs"), runs={"harvester": h, "naive": base},
                        **common))  # fmt: skip
        rows.append(Row(metric="MB/s", harvester=served / 1e6 / median(h, "secs"),
                        baseline=served / 1e6 / median(base, "secs"), **common))  # fmt: skip
    return rows, {"items": items, "served_bytes": served}


def latency(quick: bool, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """200 ms latency: 1/2/4/8 partitions, one- and two-ended, vs one sequential walk."""
    items = 2_000 if quick else 10_000
    parts = (1, 4) if quick else (1, 2, 4, 8)
    with simulator("--nobb-items", str(items), "--latency-ms", "200") as url:
        variants = {"sequential": functools.partial(spawn, "nobb-naive", url=url, page_size=100)}
        for p in parts:
            for ends in (1, 2):
                variants[f"{p}x{ends}"] = functools.partial(
                    spawn, "nobb-harvester", url=url, page_size=100, partitions=p,
                    two_ended=ends == 2, concurrency=p * ends, compression="none",
                )  # fmt: skip
        runs = interleave(variants, 1 if quick else rounds)
    for name, rs in runs.items():
        assert all(int(r["n"]) == items for r in rs), (name, rs)
    seq = runs.pop("sequential")
    rows = []
    for name, h in runs.items():
        nparts, _, walk_ends = name.partition("x")
        rows.append(Row(
            scenario="latency",
            case=f"200 ms, pageSize 100, {nparts} partition{'s' if nparts != '1' else ''}, "
                 f"{'two ends' if walk_ends == '2' else 'one end'}",
            metric="s (wall)", harvester=median(h, "secs"), baseline=median(seq, "secs"),
            baseline_name="one sequential walk, pageSize 100 (the naive loop)",
            rss_harvester_mb=median(h, "rss_mb"), rss_baseline_mb=median(seq, "rss_mb"),
            note=f"{items:,} items", runs={"harvester": h, "sequential": seq},
        ))  # fmt: skip
    return rows, {"items": items}


def fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least squares ``y = a + b x`` through ``points``: (a, b, r squared)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    b = sxy / sxx if sxx else 0.0
    a = my - b * mx
    ss = sum((y - my) ** 2 for _, y in points)
    res = sum((y - a - b * x) ** 2 for x, y in points)
    return a, b, 1 - res / ss if ss else 1.0


def scaling(quick: bool, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """100k/300k/1M items: seconds and peak RSS per size; fitted seconds per 100k items."""
    sizes = (10_000, 20_000, 40_000) if quick else (100_000, 300_000, 1_000_000)
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for items in sizes:
        with simulator("--nobb-items", str(items)) as url:
            runs[items] = interleave({
                "naive": lambda: spawn("nobb-naive", url=url, page_size=10_000),
                "harvester": lambda: spawn("nobb-harvester", url=url, compression="none"),
            }, 1)  # fmt: skip
        for name, rs in runs[items].items():
            assert all(int(r["n"]) == items for r in rs), (items, name, rs)
    rows: list[Row] = []
    extra: dict[str, Any] = {"sizes": list(sizes)}
    for items in sizes:
        h, b = runs[items]["harvester"], runs[items]["naive"]
        rows.append(Row(
            scenario="scaling", case=f"{size(items)} items, no limit, shards none",
            metric="s (wall)", harvester=median(h, "secs"), baseline=median(b, "secs"),
            baseline_name=NAIVE, rss_harvester_mb=median(h, "rss_mb"),
            rss_baseline_mb=median(b, "rss_mb"), runs={"harvester": h, "naive": b},
        ))  # fmt: skip
    for side in ("harvester", "naive"):
        a, slope, r2 = fit([(items, median(runs[items][side], "secs")) for items in sizes])
        rss = [median(runs[items][side], "rss_mb") for items in sizes]
        extra[side] = {"intercept_s": a, "slope_s_per_100k": slope * 1e5, "r2": r2,
                       "rss_mb": dict(zip(map(str, sizes), rss, strict=True))}  # fmt: skip
    hf, nf = extra["harvester"], extra["naive"]
    rss_h, rss_n = (" / ".join(f"{v:.0f}" for v in f["rss_mb"].values()) for f in (hf, nf))
    rows.append(Row(
        scenario="scaling", case="fitted slope, seconds per 100k items", metric="s/100k",
        harvester=hf["slope_s_per_100k"], baseline=nf["slope_s_per_100k"], baseline_name=NAIVE,
        note=f"R² harvester {hf['r2']:.3f}, naive {nf['r2']:.3f}; "
             f"peak RSS at {' / '.join(size(s) for s in sizes)} items: harvester {rss_h} MB, "
             f"naive {rss_n} MB",
    ))  # fmt: skip
    return rows, extra
