"""Bounded-concurrency execution of partitions under one ``asyncio.TaskGroup``.

``run_pool`` runs work items (token walks, date windows) with at most ``concurrency`` at once. A
handler may ``add`` more items while it runs (after each DBK window, the windows its planner has
ready next, a cut window's parts first), and the pool ends when the queue is empty and no handler is
running. Every task belongs to the one TaskGroup: an unexpected exception in a handler cancels the
others and propagates; cancelling the caller cancels every handler (that is how SIGINT/SIGTERM drain
a run).

Expected failures (a partition that ran out of retries) are the handler's business: it records
them and returns normally, so the rest of the run goes on.

>>> async def handler(item: int, add: Callable[[int], None]) -> None:
...     if item < 3:
...         add(item + 1)
>>> asyncio.run(run_pool([0], handler, concurrency=2))
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

__all__ = ["Handler", "gather_all", "run_pool"]

T = TypeVar("T")
Handler = Callable[[T, Callable[[T], None]], Awaitable[None]]


async def run_pool(initial: Iterable[T], handler: Handler[T], *, concurrency: int) -> None:
    """Run ``handler(item, add)`` for each item, ``concurrency`` at once at most, till none is left.

    Items start in the order given (then in the order added), so a caller that lists the two
    ends of one walk next to each other gets them running side by side.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be >= 1")
    queue: deque[T] = deque(initial)
    # One event for "the queue or the busy count changed". The loop is single-threaded and
    # nothing awaits between a check and its consequence, so no lock is needed.
    changed = asyncio.Event()
    busy = 0

    def add(item: T) -> None:
        queue.append(item)
        changed.set()

    async def worker() -> None:
        nonlocal busy
        while True:
            while not queue:
                if busy == 0:
                    changed.set()  # let the other idle workers see the end too
                    return
                changed.clear()
                await changed.wait()
            item = queue.popleft()
            busy += 1
            try:
                await handler(item, add)
            finally:
                busy -= 1
                changed.set()

    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())


async def gather_all(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Every result in order, run at once under one TaskGroup.

    Unlike ``asyncio.gather``, the first failure cancels the others and waits for them (none
    outlives the call, so none is left mid-connect when the loop closes); it is raised as is,
    not wrapped in an ``ExceptionGroup``.
    """
    try:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(c) for c in coros]
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from None
    return [t.result() for t in tasks]
