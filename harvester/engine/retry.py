"""Explicit retries: which failures are retried, how long to wait, and how often.

``classify`` says whether an error is worth another attempt: it reads the error's ``retryable``
(``harvester.errors``): transport failures (resets, timeouts, truncated bodies), 5xx and
malformed bodies (garbled in transit) are; 4xx, 401 (handed to the source), a body over the cap
and pagination guards are not, nor is anything that is not a ``FetchError``.
``call_with_retries`` runs an attempt until it succeeds, waiting with exponential backoff and full
jitter between attempts; a 429 instead closes the API's limiter until the server's reset (given
no limiter, it sleeps ``Retry-After``, else a backoff) and does not use up an attempt (it has its
own, larger bound, ``max_429_waits``). After the last attempt the last error propagates
unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from harvester.engine.clock import Clock
from harvester.engine.limiter import RateLimiter
from harvester.errors import FetchError, RateLimited

__all__ = ["RetryPolicy", "backoff", "call_with_retries", "classify"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How many attempts, and the backoff between them (seconds)."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_429_waits: int = 50


def classify(exc: BaseException) -> bool:
    """True if a new attempt of the same request may succeed."""
    return isinstance(exc, FetchError) and exc.retryable


def backoff(attempt: int, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(max_delay, base_delay * 2**attempt))."""
    return float(rand() * min(policy.max_delay, policy.base_delay * 2.0**attempt))


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    limiter: RateLimiter | None = None,
    on_retry: Callable[[int, FetchError, float], None] | None = None,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run ``attempt()`` until it succeeds or a non-retryable error or the bounds stop it."""
    failures = 0
    throttled = 0
    while True:
        try:
            return await attempt()
        except RateLimited as exc:
            throttled += 1
            if throttled > policy.max_429_waits:
                raise
            if limiter is not None:
                limiter.penalize(exc.retry_after)
                delay = 0.0
            else:
                delay = exc.retry_after if exc.retry_after is not None else backoff(3, policy, rand)
            if on_retry is not None:
                on_retry(throttled, exc, delay)
            await clock.sleep(delay)
        except FetchError as exc:
            if not classify(exc):
                raise
            failures += 1
            if failures >= policy.attempts:
                raise
            delay = backoff(failures, policy, rand)
            if on_retry is not None:
                on_retry(failures, exc, delay)
            await clock.sleep(delay)
