"""run_pool and gather_all: bounded concurrency, items added while running, errors, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from harvester.engine.scheduler import gather_all, run_pool
from harvester.errors import ConnectError


async def test_runs_every_item_including_added_ones() -> None:
    """Items added by handlers run too, and the pool ends only when none is left."""
    seen: list[int] = []

    async def handler(item: int, add: Callable[[int], None]) -> None:
        await asyncio.sleep(0)
        seen.append(item)
        if item < 100:
            add(item * 2 + 100)

    await run_pool(range(10), handler, concurrency=3)
    assert sorted(seen) == sorted([*range(10), *(i * 2 + 100 for i in range(10))])


async def test_never_more_than_concurrency_at_once() -> None:
    """At most `concurrency` handlers are in progress at any moment, and that many are reached."""
    running = 0
    peak = 0
    gate = asyncio.Event()

    async def handler(item: int, add: Callable[[int], None]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if peak == 4:
            gate.set()
        await gate.wait()
        running -= 1

    await run_pool(range(20), handler, concurrency=4)
    assert peak == 4


async def test_items_start_in_order() -> None:
    """Items start in the order given, so the two ends of one walk start side by side."""
    started: list[str] = []

    async def handler(item: str, add: Callable[[str], None]) -> None:
        started.append(item)
        await asyncio.sleep(0)

    await run_pool(["a-asc", "a-desc", "b-asc", "b-desc"], handler, concurrency=2)
    assert started[:2] == ["a-asc", "a-desc"]
    assert started == ["a-asc", "a-desc", "b-asc", "b-desc"]


async def test_unexpected_error_cancels_the_rest() -> None:
    """An exception escaping a handler cancels the other handlers and surfaces from the pool."""
    cancelled: list[int] = []

    async def handler(item: int, add: Callable[[int], None]) -> None:
        if item == 0:
            await asyncio.sleep(0)
            raise RuntimeError("boom")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise

    with pytest.raises(ExceptionGroup) as info:
        await run_pool([0, 1, 2], handler, concurrency=3)
    assert info.group_contains(RuntimeError, match="boom")
    assert sorted(cancelled) == [1, 2]


async def test_empty_pool_returns() -> None:
    """A pool with nothing to do returns at once."""

    async def handler(item: int, add: Callable[[int], None]) -> None:
        raise AssertionError("never called")

    await run_pool([], handler, concurrency=2)


async def test_gather_all_returns_results_in_order() -> None:
    """Results come back in the order the coroutines were given, whatever order they finish in."""

    async def after(n: int) -> int:
        for _ in range(5 - n):
            await asyncio.sleep(0)
        return n * 10

    assert await gather_all(after(n) for n in range(5)) == [0, 10, 20, 30, 40]


async def test_gather_all_leaves_no_task_behind_a_failure() -> None:
    """The first failure is raised as is, and every sibling was cancelled before the call ends."""
    gate = asyncio.Event()
    cancelled: list[int] = []

    async def waits(n: int) -> int:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            cancelled.append(n)
            raise
        return n

    async def fails() -> int:
        await asyncio.sleep(0)
        raise ConnectError("refused", request="probe")

    before = asyncio.all_tasks()
    with pytest.raises(ConnectError, match="refused"):
        await gather_all([waits(1), fails(), waits(2)])
    assert sorted(cancelled) == [1, 2]
    assert asyncio.all_tasks() == before
