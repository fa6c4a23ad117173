"""A fake-clock harness: workers behind one RateLimiter against the simulator's RateWindow.

No sockets and no real time: each request sleeps its latency on a ``FakeClock``, is counted by
``harvester.sim.ratelimit.RateWindow`` (the simulator's own rate limit, on the fake wall clock)
and its answer's headers go to the limiter, as a source's fetch does. The driver moves the clock
to the next sleeper's deadline, so minutes of traffic take milliseconds.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from harvester.engine.clock import FakeClock
from harvester.engine.limiter import RateLimiter
from harvester.sim.ratelimit import HeaderFamily, RateWindow, ResetStyle, RetryAfter

HeaderFamily = HeaderFamily
ResetStyle = ResetStyle
RetryAfter = RetryAfter

__all__ = ["HeaderFamily", "Outcome", "ResetStyle", "RetryAfter", "run"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the server saw: requests allowed per window (aligned to W), refusals, grants."""

    served: dict[int, int]
    refused: int
    refused_after_first: int
    limiter: RateLimiter
    #: The window (index) of the first refusal, None if none.
    first_refusal: int | None = None
    sent: int = 0

    def utilization(self, limit: int, first: int, last: int) -> float:
        """Allowed requests over windows first..last-1 as a share of what the limit allows."""
        return sum(self.served.get(w, 0) for w in range(first, last)) / (limit * (last - first))


async def run(
    *, limit: int, window: float, seconds: float, workers: int = 4, latency: float = 0.05,
    jitter: float = 0.0, sliding: bool = False, headers: HeaderFamily = "x",
    reset_style: ResetStyle = "epoch", skew: float = 0.0, rate_limit: str = "auto",
    start: float = 1_800_000_000.0, seed: int = 0, counted_at: float = 0.5,
    hidden: bool = False, retry_after: RetryAfter = "none", change_after: int = 0,
    change_to: int = 0,
) -> Outcome:  # fmt: skip
    """Run ``workers`` request loops for ``seconds`` of fake time; the server's view of it.

    The server counts a request ``counted_at`` of the way through its round trip (0: as it
    arrives and then takes ``latency`` to answer, as the simulator does; 0.5: half-way).
    """
    clock = FakeClock(start=start)
    server = RateWindow(limit, window, clock.time, sliding=sliding, headers=headers,
                        reset_style=reset_style, skew=skew, hidden=hidden,
                        retry_after=retry_after, change_after=change_after,
                        change_to=change_to)  # fmt: skip
    rnd = random.Random(seed)
    limiter = RateLimiter.from_setting(rate_limit, clock=clock, rand=random.Random(seed).random)
    refused: list[float] = []
    stop = [False]

    async def worker() -> None:
        while not stop[0]:
            async with limiter.slot():
                await clock.sleep(latency * counted_at + rnd.random() * jitter)
                decision = server.check("client")
                if not decision.allowed:
                    refused.append(clock.time())
                await clock.sleep(latency * (1 - counted_at) + rnd.random() * jitter)
                limiter.observe(decision.headers, 200 if decision.allowed else 429)
            if not decision.allowed:
                limiter.penalize(None)

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    await asyncio.sleep(0)
    while clock.monotonic() < seconds:
        deadline = clock.next_deadline()
        step = seconds - clock.monotonic() if deadline is None else deadline - clock.monotonic()
        await clock.advance(max(0.0, min(step, seconds - clock.monotonic())))
    stop[0] = True
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    origin = (start // window) * window  # the window holding the start is window 0
    served = {round((s - origin) / window): n for s, n in server.served.items()}
    first_end = start + window
    first = None if not refused else round((refused[0] // window * window - origin) / window)
    return Outcome(served, len(refused), sum(1 for t in refused if t >= first_end), limiter,
                   first, server.checked)  # fmt: skip
