"""Retries: what is retried, how often, and that 429s wait on the limiter instead."""

from __future__ import annotations

import pytest

from harvester.engine.limiter import RateLimiter
from harvester.engine.retry import RetryPolicy, backoff, call_with_retries, classify
from harvester.errors import (
    BodyTooLarge,
    ClientError,
    MalformedBody,
    RateLimited,
    ServerError,
    TruncatedBody,
)
from tests.clocks import InstantClock


def test_classify() -> None:
    """Transport errors, 5xx and malformed bodies retry; 4xx, oversized bodies, the rest do not."""
    assert classify(ServerError("x", status=503))
    assert classify(TruncatedBody("x"))
    assert not classify(ClientError("x", status=404))
    assert classify(MalformedBody("x"))
    assert not classify(BodyTooLarge("x"))
    assert not classify(ValueError("x"))


def test_backoff_is_full_jitter_and_capped() -> None:
    """Backoff grows exponentially up to max_delay, scaled by the random draw."""
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert backoff(1, policy, lambda: 1.0) == 1.0
    assert backoff(10, policy, lambda: 1.0) == 4.0
    assert backoff(3, policy, lambda: 0.0) == 0.0


async def test_fails_twice_then_succeeds() -> None:
    """Two 500s then a success: the result comes back after two waits."""
    calls = []
    retries: list[int] = []

    async def attempt() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ServerError("HTTP 500", status=500, request="nobb GET /x")
        return "ok"

    result = await call_with_retries(
        attempt, policy=RetryPolicy(), clock=InstantClock(), rand=lambda: 0.0,
        on_retry=lambda n, exc, delay: retries.append(n),
    )  # fmt: skip
    assert result == "ok"
    assert retries == [1, 2]


async def test_permanent_failure_exhausts_attempts() -> None:
    """A permanent 500 is tried `attempts` times, then the last error propagates."""
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ServerError(f"HTTP 500 #{calls}", status=500)

    with pytest.raises(ServerError, match="#4"):
        await call_with_retries(
            attempt, policy=RetryPolicy(attempts=4), clock=InstantClock(), rand=lambda: 0.0
        )
    assert calls == 4


async def test_404_is_not_retried() -> None:
    """A 404 propagates at once."""
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ClientError("HTTP 404", status=404)

    with pytest.raises(ClientError):
        await call_with_retries(attempt, policy=RetryPolicy(), clock=InstantClock())
    assert calls == 1


async def test_429_penalizes_the_limiter_without_using_attempts() -> None:
    """429s close the limiter for Retry-After and do not count as failed attempts."""
    clock = InstantClock()
    limiter = RateLimiter(ceiling=None, auto=False, clock=clock)
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RateLimited("HTTP 429", retry_after=2.0)
        return "ok"

    assert (
        await call_with_retries(
            attempt, policy=RetryPolicy(attempts=1), clock=clock, limiter=limiter
        )
        == "ok"
    )
    assert limiter.policy.blocked_until == 2.0
