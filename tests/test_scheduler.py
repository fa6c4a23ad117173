"""run_pool: bounded concurrency, items added while running, errors propagate, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from harvester.scheduler import run_pool


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
