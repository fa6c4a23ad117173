"""DBK CPU side by side: this checkout's ``harvester dump dbk`` against another checkout's.

A change's effect on the CPU figure is smaller than the machine's drift between two runs, so
both checkouts run in one process's loop, interleaved: one simulator of 30,000 products, one
first dump to learn its windows, then each round ``workers = 1`` and ``workers = 2`` dumps from
either checkout (the CLI, planned from the learned state, as ``scen_cpu`` runs it) and the
naive converter. CPU is user + sys of the dump and its worker processes (``os.wait4``), medians
of ``ROUNDS``, and for ``workers = 2`` the worker's part alone where the checkout's
``own_peak`` reports it; both checkouts byte-compiled first. The other checkout is imported
from its own directory (``python -m`` puts the working directory first on the path); it needs
``benchmarks/own_peak.py``, which wraps each timed command.

    git worktree add /tmp/base <rev>
    python -m benchmarks.ab_dbk /tmp/base [ROUNDS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.scen_cpu import dbk_dump, dbk_naive
from benchmarks.scen_other import learned_dbk
from benchmarks.suite import ROOT

PRODUCTS = 30_000


def main() -> None:
    trees = {"base": Path(sys.argv[1]).resolve(), "this": ROOT}
    rounds = int(sys.argv[2]) if sys.argv[2:] else 3
    for tree in trees.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", "harvester"], cwd=tree,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    runs: dict[str, list[float]] = {}
    pooled: dict[str, list[float]] = {}
    count = [0]
    with learned_dbk(PRODUCTS) as (url, tmp, state):
        for _ in range(rounds):
            for workers in (1, 2):
                for name, tree in trees.items():
                    r = dbk_dump(url, tmp, state, workers, count, tree)
                    assert r["n"] == PRODUCTS, (tree, r["n"])
                    runs.setdefault(f"{name} workers={workers}", []).append(r["cpu"])
                    if workers > 1 and r["cpu_children"] is not None:
                        pooled.setdefault(f"{name} workers={workers}", []).append(r["cpu_children"])
            runs.setdefault("naive converter", []).append(dbk_naive(url, state)["cpu"])
    base = statistics.median(runs["naive converter"])
    print(f"{PRODUCTS:,} products, CPU s (main + workers), medians of {rounds}, interleaved")
    for name, cpus in runs.items():
        cpu = statistics.median(cpus)
        kids = pooled.get(name)
        worker = f"  worker {statistics.median(kids):.2f} s" if kids else ""
        print(f"{name:18s} {cpu:5.2f} s  per core {base / cpu:.2f}x the naive converter  "
              f"runs {' '.join(f'{c:.2f}' for c in cpus)}{worker}")  # fmt: skip


if __name__ == "__main__":
    main()
