"""The simulator's rate limit: a fixed window of N requests per W seconds, per API and client.

Windows are aligned to multiples of W on the simulator's wall clock. Every answer carries
``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (the window's end as
an integer UNIX timestamp, as the NOBB docs describe); past the limit the answer is a 429 with the
same headers. Refused requests do not count against the window (the server did no work for
them). A limit of 0 means no limit and no rate-limit headers at all, so clients fall back to
their own configured ceiling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Decision", "FixedWindow"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one request and the headers to send with its answer."""

    allowed: bool
    headers: dict[str, str]
    window_start: float


class FixedWindow:
    """Fixed-window counters keyed by client; ``limit`` may be changed mid-run (fault profiles)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._counts: dict[str, tuple[float, int]] = {}
        #: window start → requests allowed in it (all clients), for benchmarks' utilization.
        self.served: dict[float, int] = {}
        self.refused = 0

    def check(self, client: str) -> Decision:
        """Count one request of ``client`` if the current window has room."""
        if self.limit <= 0:
            return Decision(True, {}, 0.0)
        now = self._clock()
        start = math.floor(now / self.window) * self.window
        seen_start, used = self._counts.get(client, (start, 0))
        if seen_start != start:
            used = 0
        allowed = used < self.limit
        if allowed:
            used += 1
            self.served[start] = self.served.get(start, 0) + 1
        else:
            self.refused += 1
        self._counts[client] = (start, used)
        headers = {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(max(0, self.limit - used)),
            "x-ratelimit-reset": str(math.ceil(start + self.window)),
        }
        return Decision(allowed, headers, start)
