"""RateLimiter on a fake clock: header parsing, the server window gate, in-flight, 429 waits."""

from __future__ import annotations

import asyncio

from harvester.clock import FakeClock
from harvester.limiter import RateLimiter, parse_headers


def test_headers_any_case_epoch_or_delta() -> None:
    """x-ratelimit-* are read in any case; reset is a UNIX time when large, else seconds."""
    now = 1_790_000_000.0
    headers = {"X-RateLimit-Limit": "20", "x-ratelimit-remaining": "3", "X-RATELIMIT-RESET": ""}
    headers["X-RATELIMIT-RESET"] = str(int(now) + 12)
    assert parse_headers(headers, now) == (20, 3, 12.0)
    assert parse_headers({"x-ratelimit-reset": "7"}, now) == (None, None, 7.0)
    assert parse_headers({"x-ratelimit-limit": "many"}, now) == (None, None, None)


async def _grant(limiter: RateLimiter, n: int, clock: FakeClock) -> list[float]:
    """Start n requests; return the fake times at which each was let through."""
    times: list[float] = []

    async def one() -> None:
        async with limiter.slot():
            times.append(clock.monotonic())

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    await clock.advance(0)
    for _ in range(50):
        if all(t.done() for t in tasks):
            break
        await clock.advance(1.0)
    await asyncio.gather(*tasks)
    return times


async def test_waits_for_the_reset_when_the_window_is_spent() -> None:
    """With remaining 2 and a reset in 10 s, two go now and the rest wait for the reset."""
    clock = FakeClock(start=1_790_000_000.0)
    limiter = RateLimiter(max_rate=1e9, time_period=1, clock=clock)
    limiter.observe({"x-ratelimit-limit": "5", "x-ratelimit-remaining": "2",
                     "x-ratelimit-reset": str(1_790_000_010)})  # fmt: skip
    limiter.limit = 1e9  # no pacing in this test: only the window gate
    times = await _grant(limiter, 4, clock)
    assert times[:2] == [0.0, 0.0]
    assert min(times[2:]) >= 10.0


async def test_in_flight_requests_count_against_remaining() -> None:
    """An answer's remaining is reduced by the other requests still in flight."""
    clock = FakeClock(start=1_790_000_000.0)
    limiter = RateLimiter(max_rate=10, time_period=1, clock=clock)
    limiter.in_flight = 3
    limiter.observe({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "30"})
    assert limiter.remaining == 3


async def test_limit_follows_the_server_up_and_down() -> None:
    """x-ratelimit-limit raises and lowers the pacing rate."""
    limiter = RateLimiter(max_rate=600, time_period=60, clock=FakeClock())
    limiter.observe({"x-ratelimit-limit": "1200"})
    assert limiter.limit == 1200
    limiter.observe({"x-ratelimit-limit": "100"})
    assert limiter.limit == 100


async def test_429_blocks_this_limiter_only() -> None:
    """After a 429 with Retry-After 5 this limiter waits 5 s; another API's limiter does not."""
    clock = FakeClock()
    nobb = RateLimiter(max_rate=1e9, time_period=1, clock=clock)
    dbk = RateLimiter(max_rate=1e9, time_period=1, clock=clock)
    nobb.penalize(5.0)
    assert await _grant(dbk, 1, clock) == [0.0]
    assert (await _grant(nobb, 1, clock))[0] >= 5.0


async def test_absurd_reset_is_capped() -> None:
    """A reset far in the future is capped at max_wait and counted."""
    clock = FakeClock(start=1_790_000_000.0)
    limiter = RateLimiter(max_rate=10, time_period=1, clock=clock, max_wait=60)
    limiter.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(1_790_000_000 + 10**7)})
    assert limiter.capped_resets == 1
    assert limiter.reset_at == 60.0


async def test_reset_in_the_past_means_now() -> None:
    """A reset already past does not block: the next window is assumed to have begun."""
    clock = FakeClock(start=1_790_000_000.0)
    limiter = RateLimiter(max_rate=1e9, time_period=1, clock=clock)
    limiter.observe({"x-ratelimit-limit": "5", "x-ratelimit-remaining": "0",
                     "x-ratelimit-reset": str(1_789_999_990)})  # fmt: skip
    limiter.limit = 1e9
    assert await _grant(limiter, 1, clock) == [0.0]
