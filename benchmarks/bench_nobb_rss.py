"""Peak RSS of a NOBB dump by page size and concurrency: does memory stay flat?

The simulator runs in a subprocess (no rate limit, no latency); each dump runs in a fresh
harvester process (identity on the wire, the default gzip output, partitions walked from both
ends when there are two walks or more), which reports its own peak RSS (``VmHWM``, read by
``own_peak``), the RSS it had before the dump (interpreter and imports) and its items/s.
Pages stream through a 64 KB splitter and the sink hands ~1 MB batches to its writer thread, so
nothing should grow with the page size or the number of walks: the last lines say whether it
does.

    python -m benchmarks.bench_nobb_rss [--items 200000] [--rounds 2]   # about 3.5 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import bench_nobb
from benchmarks.own_peak import own_peak_mb

PAGE_SIZES = (1000, 5000, 10_000)
CONCURRENCY = (1, 2, 4, 8)
LIMIT_MB = 250.0
#: More than this between the smallest and the largest page at equal concurrency is growth.
GROWTH_MB = 10.0


def child(url: str, page_size: int, concurrency: int) -> None:
    """One dump in this fresh process; prints records, seconds, peak RSS MB, RSS MB before."""
    for module in ("harvester.run", "harvester.sources.nobb"):
        importlib.import_module(module)  # part of the base, not of the dump
    base = own_peak_mb()
    ends = 2 if concurrency > 1 else 1
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        n, _, _ = asyncio.run(
            bench_nobb.harvester(
                url, Path(tmp), page_size, concurrency, concurrency // ends, ends, "gzip"
            )
        )
        dt = time.perf_counter() - t
    print(f"{n} {dt} {own_peak_mb()} {base}")


def run_child(url: str, page_size: int, concurrency: int) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_nobb_rss", "--child", url, str(page_size),
         str(concurrency)],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return [float(x) for x in out]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    grid = [(ps, c) for ps in PAGE_SIZES for c in CONCURRENCY]
    runs: dict[tuple[int, int], list[list[float]]] = {cell: [] for cell in grid}
    proc, url = bench_nobb.start("--nobb-items", str(args.items))
    try:
        for _ in range(args.rounds):
            for ps, c in grid:
                r = run_child(url, ps, c)
                assert int(r[0]) == args.items, r
                runs[(ps, c)].append(r)
    finally:
        proc.terminate()
        proc.wait()
    peak = {cell: statistics.median(r[2] for r in rs) for cell, rs in runs.items()}
    base = statistics.median(r[3] for rs in runs.values() for r in rs)
    rate = {cell: args.items / statistics.median(r[1] for r in rs) for cell, rs in runs.items()}
    print(f"NOBB dump peak RSS, {args.items:,} items, no limit, identity, gzip output; "
          f"median of {args.rounds} round(s); a fresh process per run (RSS before the dump "
          f"~{base:.0f} MB)")  # fmt: skip
    print("   peak RSS MB / items/s" + "".join(f"  {f'{c} walk(s)':>16s}" for c in CONCURRENCY))
    for ps in PAGE_SIZES:
        cells = "".join(f"  {peak[(ps, c)]:6.0f} / {rate[(ps, c)]:7,.0f}" for c in CONCURRENCY)
        print(f"   pageSize {ps:>6,d}     {cells}")
    at = peak[(10_000, 4)]
    under = "stays under" if at < LIMIT_MB else "exceeds"
    print(f"   pageSize 10000 with 4 walks: {at:.0f} MB peak, {under} {LIMIT_MB:.0f} MB")
    by_page = max(peak[(PAGE_SIZES[-1], c)] - peak[(PAGE_SIZES[0], c)] for c in CONCURRENCY)
    by_walks = max(peak[(ps, CONCURRENCY[-1])] - peak[(ps, CONCURRENCY[0])] for ps in PAGE_SIZES)
    per_walk = by_walks / (CONCURRENCY[-1] - CONCURRENCY[0])
    grows = by_page > GROWTH_MB
    print(f"   pageSize {PAGE_SIZES[0]:,} -> {PAGE_SIZES[-1]:,} adds at most {by_page:+.0f} MB "
          f"at any concurrency; {CONCURRENCY[0]} -> {CONCURRENCY[-1]} walks add at most "
          f"{by_walks:+.0f} MB (~{per_walk:.1f} MB a walk) at any pageSize")  # fmt: skip
    verdict = "grows" if grows else "does not grow"
    print(f"   RSS {verdict} with pageSize x concurrency (growth: > {GROWTH_MB:.0f} MB from the "
          "smallest to the largest page at equal concurrency)")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
