"""The simulator's rate limit: N requests per W seconds, per API and client, in any announced form.

``RateWindow`` counts requests per client in a **fixed** window (aligned to multiples of W on the
server's clock) or, with ``sliding``, in a **sliding** log (a request leaves W seconds after it
was allowed; "reset" is when the oldest one leaves, so ``remaining`` recovers gradually). Past
the limit the answer is a 429 with the same headers; refused requests do not count (the server
did no work for them). A limit of 0 means no limit and no rate-limit headers at all.

Every answer names the policy in the chosen header family (``headers``):

- ``x``: ``x-ratelimit-limit``, ``-remaining``, ``-reset``, the reset as an integer UNIX time
  (``reset_style="epoch"``, as the NOBB docs describe) or as whole seconds from now
  (``"delta"``), rounded up;
- ``ietf``: the httpapi drafts 07-08 fields ``RateLimit: "default";r=R;t=T`` and
  ``RateLimit-Policy: "default";q=N;w=W`` (T in whole seconds, rounded up);
- ``ietf6``: drafts <= 06, ``RateLimit-Limit``, ``-Remaining``, ``-Reset`` (seconds) and
  ``RateLimit-Policy: N;w=W``;
- ``both``: ``x`` and ``ietf`` together.

Quotas nobody announces (each off by default): ``hidden`` sends no rate-limit headers at all
(only ``Date``); ``retry_after`` adds ``Retry-After`` to each 429, in whole seconds (rounded up)
or as an HTTP date (rounded up to the second), pointing at the window's end (fixed) or at when
the oldest counted request leaves (sliding); ``change_after`` requests into a run the limit
becomes ``change_to`` (a quota that drops or rises mid-run).

``skew`` runs the server's clock that many seconds ahead of the simulator's (negative: behind):
its ``Date`` header, its windows' alignment and its UNIX-time resets, as a server whose clock is
off would.
"""

from __future__ import annotations

import collections
import email.utils
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Decision", "FixedWindow", "HeaderFamily", "RateWindow", "ResetStyle", "RetryAfter"]

HeaderFamily = Literal["x", "ietf", "ietf6", "both"]
ResetStyle = Literal["epoch", "delta"]
RetryAfter = Literal["none", "seconds", "date"]


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one request and the headers to send with its answer."""

    allowed: bool
    headers: dict[str, str]
    window_start: float


class RateWindow:
    """Per-client counters; ``limit`` may be changed mid-run (fault profiles, benchmarks)."""

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float],
        *,
        sliding: bool = False,
        headers: HeaderFamily = "x",
        reset_style: ResetStyle = "epoch",
        skew: float = 0.0,
        hidden: bool = False,
        retry_after: RetryAfter = "none",
        change_after: int = 0,
        change_to: int = 0,
    ) -> None:
        self.limit = limit
        self.window = window
        self.sliding = sliding
        self.family = headers
        self.reset_style = reset_style
        self.skew = skew
        self.hidden = hidden
        self.retry_after = retry_after
        self.change_after, self.change_to = change_after, change_to
        self.checked = 0
        self._clock = clock
        self._counts: dict[str, tuple[float, int]] = {}
        self._logs: dict[str, collections.deque[float]] = {}
        #: window start (simulator clock, aligned to W) → requests allowed in it (all clients).
        self.served: dict[float, int] = {}
        self.refused = 0

    def check(self, client: str) -> Decision:
        """Count one request of ``client`` if its window has room."""
        self.checked += 1
        if self.change_after and self.change_to and self.checked == self.change_after + 1:
            self.limit = self.change_to
        if self.limit <= 0:
            return Decision(True, {}, 0.0)
        now = self._clock() + self.skew  # the server's clock
        if self.sliding:
            log = self._logs.setdefault(client, collections.deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            allowed = len(log) < self.limit
            if allowed:
                log.append(now)
            used, reset_at = len(log), (log[0] + self.window if log else now)
        else:
            start = math.floor(now / self.window) * self.window
            seen_start, used = self._counts.get(client, (start, 0))
            if seen_start != start:
                used = 0
            allowed = used < self.limit
            if allowed:
                used += 1
            self._counts[client] = (start, used)
            reset_at = start + self.window
        bucket = math.floor((now - self.skew) / self.window) * self.window
        if allowed:
            self.served[bucket] = self.served.get(bucket, 0) + 1
        else:
            self.refused += 1
        remaining = max(0, self.limit - used)
        headers = self._headers(now, remaining, reset_at)
        if not allowed and self.retry_after != "none":
            headers["Retry-After"] = (
                str(max(0, math.ceil(reset_at - now - 1e-9)))
                if self.retry_after == "seconds"
                else email.utils.formatdate(math.ceil(reset_at - 1e-9), usegmt=True)
            )
        return Decision(allowed, headers, bucket)

    def _headers(self, now: float, remaining: int, reset_at: float) -> dict[str, str]:
        delta = str(max(0, math.ceil(reset_at - now - 1e-9)))
        out = {"Date": email.utils.formatdate(now, usegmt=True)}
        if self.hidden:
            return out
        if self.family in ("x", "both"):
            reset = str(math.ceil(reset_at)) if self.reset_style == "epoch" else delta
            out.update(
                {
                    "x-ratelimit-limit": str(self.limit),
                    "x-ratelimit-remaining": str(remaining),
                    "x-ratelimit-reset": reset,
                }
            )
        if self.family in ("ietf", "both"):
            out["RateLimit-Policy"] = f'"default";q={self.limit};w={self.window:g}'
            out["RateLimit"] = f'"default";r={remaining};t={delta}'
        if self.family == "ietf6":
            out.update(
                {
                    "RateLimit-Limit": str(self.limit),
                    "RateLimit-Remaining": str(remaining),
                    "RateLimit-Reset": delta,
                    "RateLimit-Policy": f"{self.limit};w={self.window:g}",
                }
            )
        return out


#: The name the simulator has used for its (fixed-window) limit.
FixedWindow = RateWindow
