"""What an ONIX conversion worker process imports: its initializer, and nothing of asyncio.

A worker is a fresh interpreter (``spawn``); it imports the module of every function it is sent
by name. Keeping ``warm`` here, not in ``onix_pool`` (which needs asyncio and, through it, ssl),
spares each worker that import at start-up: measured, ~25 ms of CPU a worker.
"""

from __future__ import annotations

import signal

__all__ = ["HELD", "warm"]

#: The signals a worker must not die of mid-batch (``warm``).
HELD = frozenset({signal.SIGINT, signal.SIGTERM})


def warm() -> None:
    """Worker initializer: ignore SIGINT and SIGTERM, import the converter before any batch.

    A terminal's Ctrl-C, and systemd's SIGTERM, reach the whole process group; the main process
    drains the run and stops the pool itself, so a worker must not die of them mid-batch. (If
    the main process dies, a worker reads end-of-file on its queue and exits.)
    """
    for sig in HELD:
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # held since the spawn (onix_pool): now ignored
        signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)
    from harvester.parse import onix  # noqa: F401
