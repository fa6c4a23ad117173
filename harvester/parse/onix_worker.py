"""What an ONIX conversion worker process runs: its initializer, its task, nothing of asyncio.

A worker is a fresh interpreter (``spawn``); it imports the module of every function it is sent
by name. Keeping ``warm`` and ``convert_shared`` here, not in ``onix_pool`` (which needs asyncio
and, through it, ssl), spares each worker that import at start-up: measured, ~25 ms of CPU a
worker.
"""

from __future__ import annotations

import signal

from harvester.parse.onix import SHAPES, Converted, Src, convert_batch
from harvester.parse.onix_shapes import Shipped

__all__ = ["HELD", "convert_shared", "warm"]

#: The signals a worker must not die of mid-batch (``warm``).
HELD = frozenset({signal.SIGINT, signal.SIGTERM})


def warm() -> None:
    """Worker initializer: ignore SIGINT and SIGTERM (the converter is imported with this module).

    A terminal's Ctrl-C, and systemd's SIGTERM, reach the whole process group; the main process
    drains the run and stops the pool itself, so a worker must not die of them mid-batch. (If
    the main process dies, a worker reads end-of-file on its queue and exits.)
    """
    for sig in HELD:
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # held since the spawn (onix_pool): now ignored
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)


def convert_shared(
    root_open: bytes, root_tag: bytes, data: bytes, src: Src, shipped: Shipped
) -> tuple[list[Converted], Shipped]:
    """``convert_batch`` in a worker, trading compiled shapes with the main process: first
    adopts ``shipped`` (the shapes the main process compiled since it sent its last batch),
    then returns the records with the shapes this worker compiled since its last result
    (``Shapes.handoff``; still here if the batch raised, they go with the next result)."""
    SHAPES.adopt(shipped)
    return convert_batch(root_open, root_tag, data, src), SHAPES.handoff()
