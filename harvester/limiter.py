"""One rate limiter per API: smooth pacing on aiolimiter, kept in step with the server's headers.

``RateLimiter.slot()`` waits for permission to send one request and counts it as in flight until
the block ends. Two gates:

1. **Pacing** (aiolimiter): requests leave at ``limit / period``, evenly, with no start-up burst
   (``AsyncLimiter(1, period / limit)``). The rate starts at the configured ceiling and follows
   the server's ``x-ratelimit-limit`` up as well as down.
2. **The server's window**: after each answer, ``observe`` reads ``x-ratelimit-limit``,
   ``-remaining`` and ``-reset`` in any letter case (reset as a UNIX time when above 10**9,
   else as seconds from now). A new request is allowed only while ``remaining`` minus the
   requests sent since exceeds zero; otherwise it waits for the reset (plus jitter), when the
   budget becomes ``limit`` again. A reset in the past means "now"; one further away than
   ``max_wait`` is capped (and counted in ``capped_resets``).

``penalize`` (after a 429) closes this limiter until the reset or ``Retry-After``, plus jitter;
other APIs' limiters are separate objects and keep going. All waiting goes through the ``Clock``,
so tests run on a fake one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter

from harvester.clock import Clock, SystemClock

__all__ = ["RateLimiter", "parse_headers"]

_EPOCH_THRESHOLD = 1_000_000_000


def parse_headers(
    headers: Mapping[str, str], now: float
) -> tuple[int | None, int | None, float | None]:
    """(limit, remaining, seconds until reset) from x-ratelimit-* headers, any case, any form."""
    lower = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-ratelimit-")}

    def number(name: str) -> float | None:
        try:
            return float(lower[name])
        except (KeyError, ValueError):
            return None

    limit, remaining, reset = (
        number("x-ratelimit-limit"),
        number("x-ratelimit-remaining"),
        number("x-ratelimit-reset"),
    )
    until = None
    if reset is not None:
        until = reset - now if reset > _EPOCH_THRESHOLD else reset
    return (
        int(limit) if limit is not None else None,
        int(remaining) if remaining is not None else None,
        until,
    )


class RateLimiter:
    """Paces one API's requests and keeps them inside the server's announced window."""

    def __init__(
        self,
        *,
        max_rate: float,
        time_period: float,
        clock: Clock | None = None,
        jitter: Callable[[], float] | None = None,
        max_wait: float = 3600.0,
        name: str = "",
    ) -> None:
        self.name = name
        self.limit = max_rate
        self.period = time_period
        self._clock = clock or SystemClock()
        self._jitter = jitter or (lambda: 0.0)
        self._max_wait = max_wait
        self._pace: AsyncLimiter | None = None
        self._pace_rate = 0.0
        self.remaining: int | None = None
        self.reset_at: float | None = None  # monotonic time of the server window's end
        self.blocked_until = 0.0
        self.in_flight = 0
        self.sent = 0
        self.waits = 0
        self.capped_resets = 0

    def _pacer(self) -> AsyncLimiter | None:
        if self.limit <= 0:
            return None
        rate = self.limit / self.period
        if self._pace is None or rate != self._pace_rate:
            # aiolimiter binds to the running loop; built lazily, inside it.
            self._pace = AsyncLimiter(1, 1 / rate)
            self._pace_rate = rate
        return self._pace

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for permission; the request counts as in flight until the block ends."""
        await self._wait_window()
        pacer = self._pacer()
        if pacer is not None:
            await pacer.acquire()
        await self._wait_window()  # the window may have closed while we were paced
        self.in_flight += 1
        self.sent += 1
        if self.remaining is not None:
            self.remaining -= 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def _wait_window(self) -> None:
        while True:
            now = self._clock.monotonic()
            if now < self.blocked_until:
                self.waits += 1
                await self._clock.sleep(self.blocked_until - now)
                continue
            if self.remaining is not None and self.remaining <= 0 and self.reset_at is not None:
                if now < self.reset_at:
                    self.waits += 1
                    await self._clock.sleep(self.reset_at - now + self._jitter())
                    continue
                # A new window: the whole limit is available again.
                self.remaining = int(self.limit) if self.limit > 0 else None
                self.reset_at = None
            return

    def observe(self, headers: Mapping[str, str]) -> None:
        """Take the server's x-ratelimit-* headers from an answer into account."""
        limit, remaining, until = parse_headers(headers, self._clock.time())
        if limit is not None and limit > 0:
            self.limit = float(limit)
        if until is not None:
            if until > self._max_wait:
                self.capped_resets += 1
                until = self._max_wait
            reset_at = self._clock.monotonic() + max(0.0, until)
            new_window = self.reset_at is None or abs(reset_at - self.reset_at) > 0.5
            self.reset_at = reset_at
            if remaining is not None:
                # Requests still in flight were sent after the server counted this answer's.
                estimate = remaining - max(0, self.in_flight - 1)
                if new_window or self.remaining is None:
                    self.remaining = estimate
                else:
                    self.remaining = min(self.remaining, estimate)
        elif remaining is not None:
            self.remaining = remaining

    def penalize(self, retry_after: float | None) -> None:
        """After a 429: no request until Retry-After, else the known reset, else one period."""
        now = self._clock.monotonic()
        if retry_after is not None:
            wait = min(retry_after, self._max_wait)
        elif self.reset_at is not None and self.reset_at > now:
            wait = self.reset_at - now
        else:
            wait = self.period / max(1.0, self.limit) * 2
        self.remaining = 0 if self.reset_at is not None else self.remaining
        self.blocked_until = max(self.blocked_until, now + wait + self._jitter())
