"""What a batch handed to a conversion worker costs beyond converting it.

One worker process (``spawn``, with the initializer ``OnixConverter`` gives it) converts 1 MB
batches of simulator products one at a time; its CPU (user + sys from ``RUSAGE_CHILDREN`` once
the pool has stopped, start-up included) less this process's CPU for converting the same batches
from the same cold start (no shape compiled) is what handing them over costs: the worker's
start-up, pickling each batch there and its JSON lines back, the pipe. Interleaved rounds, each
with a fresh pool; medians of ``ROUNDS``, in milliseconds per batch. ``workers = 2`` hands the
pool about 45 % of a dump's batches (docs/benchmarks.md, "What moved the DBK figure").

    python -m benchmarks.bench_handoff [PRODUCTS] [ROUNDS]
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from benchmarks.bench_onix_shapes import onix_message, split_batches
from harvester.parse.onix import Src, convert_batch, read_header
from harvester.parse.onix_shapes import Shapes
from harvester.parse.onix_worker import warm
from harvester.sim.books import BookCatalogue

Args = tuple[bytes, bytes, bytes, Src]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pooled(args: list[Args]) -> float:
    """CPU seconds of one fresh worker converting ``args`` one batch at a time."""
    before = _children_cpu()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=warm) as pool:
        for a in args:
            pool.submit(convert_batch, *a).result()
    return _children_cpu() - before


def _here(args: list[Args]) -> float:
    """CPU seconds of converting ``args`` in this process, from no shape compiled."""
    t = time.process_time()
    shapes = Shapes()
    for a in args:
        convert_batch(*a, shapes)
    return time.process_time() - t


def main() -> None:
    n = int(sys.argv[1]) if sys.argv[1:] else 30_000
    rounds = int(sys.argv[2]) if sys.argv[2:] else 3
    books = BookCatalogue(n, 1)
    prologue, batches = split_batches(onix_message([books.product(pos) for pos in range(n)]))
    src = read_header(prologue.document)
    args = [(prologue.root_open, prologue.root_tag, b.data, src) for b in batches]
    here, pooled = [], []
    for _ in range(rounds):
        here.append(_here(args))
        pooled.append(_pooled(args))
    ms = 1e3 / len(args)
    h, p = statistics.median(here), statistics.median(pooled)
    print(f"{n:,} products in {len(args)} batches of ~1 MB, CPU ms per batch, medians of {rounds}")
    print(f"converted here    {h * ms:5.1f}  runs {' '.join(f'{c:.2f}' for c in here)} s")
    print(f"in a worker       {p * ms:5.1f}  runs {' '.join(f'{c:.2f}' for c in pooled)} s")
    print(f"the hand-off      {(p - h) * ms:5.1f}  ({(p - h) / h:.0%} of converting)")


if __name__ == "__main__":
    main()
