"""Product shapes compiled by each process of ``workers = 2``, traded with the batches or not.

The simulator's catalogue (``PRODUCTS``, 30,000 by default) in 1 MB batches through
``OnixConverter(2)``, submitted as a dump submits them (at most four pending), from a fresh state:
a new ``Shapes`` for this process (``OnixConverter``'s ``shapes``) and a new worker. Printed
per side: the shapes this process compiled (``Shapes.compiles``), those the worker compiled
(each result hands back exactly those: ``Shapes.handoff``), and the CPU of this process's
conversions and of the worker (``RUSAGE_CHILDREN`` once the pool has stopped, start-up
included). "traded" is the code as it runs; "own" takes the trade out: no batch kept here
first (``onix_pool._FIRST_HERE`` 0), nothing sent with a batch, what comes back counted and
dropped, as before the trade.
Interleaved rounds, medians.

    python -m benchmarks.bench_shape_trade [PRODUCTS] [ROUNDS]
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import sys
import time
from collections import deque
from typing import Any

from benchmarks.bench_onix_shapes import onix_message, split_batches
from harvester.parse import onix_pool
from harvester.parse.onix import read_header
from harvester.parse.onix_pool import Converting, OnixConverter
from harvester.parse.onix_shapes import Shapes, Shipped
from harvester.parse.onix_split import Batch, Prologue
from harvester.sim.books import BookCatalogue


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _side(traded: bool, back: list[int]) -> Shapes:
    """A fresh ``Shapes`` for this process; ``back`` counts the shapes the worker hands back.
    Not ``traded``: nothing sent with a batch, what comes back dropped."""
    shapes = Shapes()
    adopt = shapes.adopt

    def counted(shipped: Shipped) -> None:
        back[0] += len(shipped)
        if traded:
            adopt(shipped)

    shapes.adopt = counted  # type: ignore[method-assign]
    if not traded:
        shapes.handoff = dict  # type: ignore[method-assign]
    return shapes


async def _convert(prologue: Prologue, batches: list[Batch], shapes: Shapes, first: int) -> float:
    """Convert every batch as a dump does, the first ``first`` here; the CPU of this process's
    part (the pool's threads included, as in a dump)."""
    src = read_header(prologue.document)
    t = time.process_time()
    saved, onix_pool._FIRST_HERE = onix_pool._FIRST_HERE, first
    try:
        async with OnixConverter(2, shapes) as conv:
            pending: deque[Converting] = deque()
            for batch in batches:
                while len(pending) >= 4:
                    await conv.result(pending.popleft(), label="bench")
                pending.append(conv.submit(prologue, src, batch))
            while pending:
                await conv.result(pending.popleft(), label="bench")
    finally:
        onix_pool._FIRST_HERE = saved
    return time.process_time() - t


def _round(prologue: Prologue, batches: list[Batch], traded: bool) -> dict[str, Any]:
    back = [0]
    before = _children_cpu()
    shapes = _side(traded, back)
    here = asyncio.run(_convert(prologue, batches, shapes, onix_pool._FIRST_HERE if traded else 0))
    return {"here": shapes.compiles, "worker": back[0], "cpu_here": here,
            "cpu_worker": _children_cpu() - before}  # fmt: skip


def main() -> None:
    n = int(sys.argv[1]) if sys.argv[1:] else 30_000
    rounds = int(sys.argv[2]) if sys.argv[2:] else 3
    books = BookCatalogue(n, 1)
    prologue, batches = split_batches(onix_message([books.product(pos) for pos in range(n)]))
    runs: dict[str, list[dict[str, Any]]] = {"traded": [], "own": []}
    for _ in range(rounds):
        for name in runs:
            runs[name].append(_round(prologue, batches, name == "traded"))
    print(f"{n:,} products in {len(batches)} batches of ~1 MB, workers = 2, medians of {rounds}")
    print("side    compiled here  in the worker  CPU here  CPU worker  CPU both")
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        both = statistics.median(r["cpu_here"] + r["cpu_worker"] for r in rs)
        print(f"{name:6}  {med['here']:13.0f}  {med['worker']:13.0f}  {med['cpu_here']:7.2f}s"
              f"  {med['cpu_worker']:9.2f}s  {both:7.2f}s")  # fmt: skip


if __name__ == "__main__":
    main()
