"""DBK CPU side by side: this checkout's ``harvester dump dbk`` against another checkout's.

A change's effect on the CPU figure is smaller than the machine's drift between two runs, so
both checkouts run in one process's loop, interleaved: one simulator of 30,000 products, one
first dump to learn its windows, then each round ``workers = 1`` and ``workers = 2`` dumps from
either checkout (the CLI, planned from the learned state, as ``scen_cpu`` runs it) and the
naive converter. CPU is user + sys of the dump and its worker processes (``os.wait4``), medians
of ``ROUNDS``; both checkouts byte-compiled first. The other checkout is imported from its own
directory (``python -m`` puts the working directory first on the path).

    git worktree add /tmp/base <rev>
    python -m benchmarks.ab_dbk /tmp/base [ROUNDS]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson

from benchmarks.scen_cpu import DBK_CONFIG
from benchmarks.scen_other import learned_dbk
from benchmarks.suite import ROOT

PRODUCTS = 30_000


def _cpu(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """``(user + sys CPU, wall seconds)`` of ``cmd`` and the children it waited for."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd[2:5])} in {cwd} failed: {err.decode()[-2000:]}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - t


def _dump(tree: Path, url: str, tmp: Path, state: Path, workers: int, n: int) -> float:
    cfg = tmp / f"ab{workers}.toml"
    cfg.write_text(DBK_CONFIG.format(url=url, workers=workers))
    out = tmp / f"ab-out{n}"
    (out / "dbk").mkdir(parents=True)
    shutil.copy(state, out / "dbk" / "state.json")
    cpu, _ = _cpu([sys.executable, "-m", "harvester", "dump", "dbk", "--config", str(cfg),
                   "--out", str(out), "--progress", "never", "-q"], tree)  # fmt: skip
    records = orjson.loads(next(out.rglob("manifest.json")).read_bytes())["records"]
    assert records == PRODUCTS, (tree, records)
    shutil.rmtree(out)
    return cpu


def main() -> None:
    trees = {"base": Path(sys.argv[1]).resolve(), "this": ROOT}
    rounds = int(sys.argv[2]) if sys.argv[2:] else 3
    for tree in trees.values():
        subprocess.run([sys.executable, "-m", "compileall", "-q", "harvester"], cwd=tree,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    runs: dict[str, list[float]] = {}
    with learned_dbk(PRODUCTS) as (url, tmp, state):
        n = 0
        for _ in range(rounds):
            for workers in (1, 2):
                for name, tree in trees.items():
                    n += 1
                    cpu = _dump(tree, url, tmp, state, workers, n)
                    runs.setdefault(f"{name} workers={workers}", []).append(cpu)
            naive = [sys.executable, "-m", "benchmarks.bench_dbk", "--child", "naive", url,
                     str(state)]  # fmt: skip
            runs.setdefault("naive converter", []).append(_cpu(naive, ROOT)[0])
    base = statistics.median(runs["naive converter"])
    print(f"{PRODUCTS:,} products, CPU s (main + workers), medians of {rounds}, interleaved")
    for name, cpus in runs.items():
        cpu = statistics.median(cpus)
        print(f"{name:18s} {cpu:5.2f} s  per core {base / cpu:.2f}x the naive converter  "
              f"runs {' '.join(f'{c:.2f}' for c in cpus)}")  # fmt: skip


if __name__ == "__main__":
    main()
