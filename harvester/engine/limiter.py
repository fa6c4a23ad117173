"""One rate limiter per API: the one place that waits for quota, following the server's policy.

``RateLimiter.slot()`` waits until the request may leave and counts it as in flight until the
block ends; inside the block, ``observe(headers, status)`` hands the answer's headers over. The
policy itself (what the headers say, the window's end and length, skew, sliding or fixed, the
pace) is inferred by the pure state machine in ``ratepolicy.py`` from ``rateheaders.py``'s
readings; this module adds the waiting, the per-request bookkeeping and the report.

``rate_limit`` (config) maps onto it: ``"auto"`` follows the server with no ceiling; ``"N/Ts"``
is a ceiling never exceeded; ``"0"`` is no ceiling at all. Where the server sends no rate
headers, nothing is paced beyond that ceiling (and the callers' concurrency) until a 429 comes;
then the quota those refusals show is learned (``ratelearn.py``) and paced by.

``penalize`` (after a 429) closes this limiter until Retry-After, else the window's end, else a
doubling backoff; a 503 with Retry-After closes it the same way (seen in ``observe``). Other
APIs' limiters are separate objects and keep going. All waiting goes through the ``Clock``, so
tests run on a fake one. The first policy inferred and every change of it (announced, or learned
from 429s) is logged at INFO (``-v``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

from harvester.config import parse_rate
from harvester.engine.clock import Clock, SystemClock
from harvester.engine.rateheaders import read
from harvester.engine.ratepolicy import Policy

__all__ = ["RateLimiter"]

log = logging.getLogger("harvester.limiter")
_TICKET: contextvars.ContextVar[tuple[int, float] | None] = contextvars.ContextVar(
    "harvester_rate_ticket", default=None
)


class RateLimiter:
    """Paces one API's requests by the policy its server announces (module docstring)."""

    def __init__(
        self,
        *,
        ceiling: tuple[float, float] | None = None,
        auto: bool = True,
        clock: Clock | None = None,
        jitter: Callable[[], float] | None = None,
        max_wait: float = 3600.0,
        name: str = "",
        rand: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        self.ceiling = ceiling if ceiling and ceiling[0] > 0 else None
        self.policy = Policy(ceiling=self.ceiling, auto=auto, max_wait=max_wait, rand=rand)
        self._clock = clock or SystemClock()
        self._jitter = jitter or (lambda: 0.0)
        self._changed: asyncio.Event | None = None
        self.in_flight = 0
        self.sent = 0
        self.throttled = 0
        self.waited = 0.0
        self.held = 0  # requests that had to wait for quota at all
        self._strikes = 0
        self._learned = ""  # what the hidden quota's learner said last (logged on change)

    @classmethod
    def from_setting(
        cls,
        text: str,
        *,
        clock: Clock | None = None,
        name: str = "",
        key: str = "rate_limit",
        rand: Callable[[], float] | None = None,
    ) -> RateLimiter:
        """From a ``rate_limit`` value: ``"auto"``, ``"N/Ts"`` (a ceiling) or ``"0"``."""
        if text.strip().lower() == "auto":
            return cls(ceiling=None, auto=True, clock=clock, name=name, rand=rand)
        rate, period = parse_rate(text, key=key)
        return cls(
            ceiling=(rate, period) if rate > 0 else None,
            auto=False,
            clock=clock,
            name=name,
            rand=rand,
        )

    @property
    def capped_resets(self) -> int:
        return self.policy.capped_resets

    def _event(self) -> asyncio.Event:
        if self._changed is None:  # bound to the running loop: built lazily, inside it
            self._changed = asyncio.Event()
        return self._changed

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for permission; the request counts as in flight until the block ends."""
        began = self._clock.monotonic()
        held = False
        while True:
            now = self._clock.monotonic()
            when = self.policy.next_allowed(now, self.in_flight)
            if when is None:
                held = True
                await self._event().wait()
                continue
            if when > now:
                held = True
                await self._clock.sleep(when - now + self._jitter())
                continue
            break
        self.held += held
        now = self._clock.monotonic()
        self.waited += now - began
        seq = self.policy.sent(now)
        self.in_flight += 1
        self.sent += 1
        token = _TICKET.set((seq, now))
        try:
            yield
        finally:
            _TICKET.reset(token)
            self.policy.finished(seq, self._clock.monotonic())
            self.in_flight -= 1
            self._poke()

    def observe(self, headers: Mapping[str, str], status: int = 200) -> None:
        """Take an answer's rate-limit headers (any family, any case) into account."""
        ticket = _TICKET.get()
        now = self._clock.monotonic()
        seq, sent_at = ticket if ticket is not None else (0, now)
        if status < 400:
            self._strikes = 0
        changed = self.policy.observe(
            read(headers),
            seq=seq,
            sent_at=sent_at,
            received=now,
            wall=self._clock.time(),
            status=status,
        )
        if changed and self.policy.headers_seen:
            log.info("%s rate limit: %s", self.name or "api", self.describe())
        elif not self.policy.headers_seen and self.policy.hidden.active:
            learned = self.policy.hidden.describe()
            if learned != self._learned:
                self._learned = learned
                log.info("%s rate limit: %s", self.name or "api", self.describe())
        self._poke()

    def penalize(self, retry_after: float | None) -> None:
        """After a 429: no request until Retry-After, else the known reset, else a backoff."""
        self.throttled += 1
        self._strikes += 1
        now = self._clock.monotonic()
        if self.policy.retry_hint is not None:
            # observe() read Retry-After against the server's clock: that one counts, from now.
            retry_after, self.policy.retry_hint = self.policy.retry_hint, None
        self.policy.penalize(now, retry_after, self._strikes)
        self.policy.blocked_until += self._jitter()
        self._poke()

    def describe(self) -> str:
        """The inferred policy in words, as logged."""
        family, limit, window_, style, kind, skew = self.policy.snapshot()
        if not self.policy.headers_seen:
            hidden = self.policy.hidden
            return (
                "no rate headers seen"
                + (f"; {hidden.describe()}" if hidden.active else "")
                + (f"; ceiling {self.ceiling[0]:g}/{self.ceiling[1]:g}s" if self.ceiling else "")
            )
        window = f"{window_:g}s" if window_ else "unknown"
        parts = [
            f"{limit if limit is not None else '?'} per {window}",
            f"{kind} window",
            f"headers {family}",
            f"reset {style or 'none'}",
            f"skew {skew:+d}s",
        ]
        if self.ceiling:
            parts.append(f"ceiling {self.ceiling[0]:g}/{self.ceiling[1]:g}s")
        return ", ".join(parts)

    def report(self) -> dict[str, object]:
        """The manifest's ``rate_limit`` object: the inferred policy and what it cost.

        ``learned_from`` says where ``limit``, ``window`` and ``kind`` come from: ``"headers"``,
        ``"429"`` (a quota shown only by refusals; ``rate`` is the adaptive pace where no fixed
        window was settled) or None (no limit met)."""
        family, limit, window, style, kind, skew = self.policy.snapshot()
        hidden = self.policy.hidden
        learned: str | None = "headers" if self.policy.headers_seen else None
        rate = None
        if not self.policy.headers_seen and hidden.active:
            learned, limit, kind = "429", hidden.limit, hidden.kind  # type: ignore[assignment]
            window = None if hidden.window is None else round(hidden.window, 2)
            rate = None if hidden.rate is None else round(hidden.rate, 3)
        return {
            "learned_from": learned,
            "limit": limit,
            "window": window,
            "family": family,
            "reset_style": style,
            "kind": kind if learned else None,
            "kind_seen": self.policy.kind_seen if self.policy.headers_seen else kind is not None,
            "rate": rate,
            "skew": skew,
            "ceiling": f"{self.ceiling[0]:g}/{self.ceiling[1]:g}s" if self.ceiling else None,
            "requests": self.sent,
            "429s": self.throttled,
            "refused_share": round(self.throttled / self.sent, 4) if self.sent else 0.0,
            "waited_seconds": round(self.waited, 3),
        }
