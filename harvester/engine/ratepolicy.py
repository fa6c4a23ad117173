"""How fast a server's announced policy lets us send: a pure state machine, no I/O, no clock.

``Policy.observe`` takes one answer's ``Reading`` (``rateheaders.py``) with the sequence number,
send and receive times of its request (our monotonic seconds) and the wall time of its receipt;
``next_allowed`` says when the next request may leave (None: after another answer); ``sent``
records one leaving. Our requests are kept in a ``SendLog`` (``ratelog.py``), the server's clock
skew in a ``ServerClock`` (``rateskew.py``); the window the answers show (its end's bounds
``[lo, hi]``, its length, fixed or sliding) is read by ``WindowReading`` (``ratewindow.py``),
which ``Policy`` extends with the pace. The rules:

- before any answer, one request at a time;
- what is left (the newest answer's ``remaining``, less every request sent after it or still
  unanswered before it; never more than any answer of this window allows) is spread evenly
  until the middle of those bounds; with nothing left, nothing leaves before ``hi``;
- when ``hi`` passes, a fixed window refills and moves on, counted as a sliding one would until
  an answer confirms;
- in a sliding window our requests free one by one as they age out of it (reckoned by send
  times, once its length is measured and longer than the reset's resolution; until then at the
  announced reset), and the pace never exceeds ``limit / window``;
- a configured ceiling (``"N/Ts"``) is a minimum gap of ``T / N`` between requests, always;
- with no rate headers at all, nothing is paced (beyond the ceiling and the callers' own
  concurrency) until a 429 comes; from then on ``HiddenQuota`` (``ratelearn.py``) learns the
  quota the refusals show and paces by it.
"""

from __future__ import annotations

from collections.abc import Callable

from harvester.engine.rateheaders import Reading, retry_after_seconds
from harvester.engine.ratelearn import HiddenQuota
from harvester.engine.ratephase import refusal_end
from harvester.engine.ratewindow import EPS, WindowReading

__all__ = ["Policy", "Snapshot"]

#: (family, limit, window to 0.1 s, reset style, kind, skew in whole seconds).
Snapshot = tuple[str | None, int | None, float | None, str | None, str, int]

#: A sliding window is paced this much below ``limit / window``.
SLIDING_MARGIN = 1.0


class Policy(WindowReading):
    """One API's inferred rate-limit policy and pace (module docstring)."""

    def __init__(
        self,
        *,
        ceiling: tuple[float, float] | None,
        auto: bool,
        max_wait: float = 3600.0,
        rand: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(max_wait=max_wait)
        #: A quota shown only by 429s, learned while no answer carries rate headers.
        self.hidden = HiddenQuota(rand)
        self.ceiling_gap = ceiling[1] / ceiling[0] if ceiling and ceiling[0] > 0 else 0.0
        self.auto = auto
        self.family: str | None = None
        self.answered = False
        self.headers_seen = False
        self.seq = 0
        self.last_send: float | None = None
        self.remaining: int | None = None
        #: No request before this (our monotonic seconds; its origin is arbitrary and may lie
        #: in the future, so "never blocked" is minus infinity, not 0).
        self.blocked_until = float("-inf")
        #: The last 429's or 503's Retry-After, in seconds, read against the server's clock.
        self.retry_hint: float | None = None
        self.rtt: float | None = None  # the shortest round trip seen
        self._info_sent = 0.0  # when the request whose answer gave ``remaining`` left
        self._floor: int | None = None  # min over this window's answers of remaining + seq
        self._guard = 0.0  # after a predicted refill: a sliding window's length to count by

    # -- sending -------------------------------------------------------------------------
    def sent(self, now: float) -> int:
        """Record one request leaving now; returns its sequence number."""
        self.seq += 1
        self.last_send = now
        self.hidden.sent(self.seq, now)
        self._log.add(self.seq, now, keep=2 * max(self.window or 0.0, self._max_until) + 1.0)
        return self.seq

    def finished(self, seq: int, now: float) -> None:
        """Request ``seq`` is over (answered or not): it no longer counts as in flight."""
        self._log.finished(seq, now)

    def left(self, now: float | None = None, *, guard: bool = True) -> int | None:
        """Requests the server still allows in this window, by our count (None: unknown).

        In a sliding window, our requests that aged out since the answer behind
        ``remaining`` (W seconds after their answer came, W taken at its upper bound) count
        as free again.
        """
        if self.remaining is None:
            return None
        left = self.remaining - (self.seq - self.info_seq)
        # Requests older than the newest answer's but still unanswered may have overtaken by
        # it on the way (uneven latency): they may not be in its count yet.
        left -= self._log.in_flight(before=self.info_seq)
        if guard and self._guard and self.limit is not None and now is not None:
            left = min(
                left, self.limit - sum(1 for t in self._log.surely_out(self._guard) if t > now)
            )
        if self._floor is not None and self.kind == "fixed":
            left = min(left, self._floor - self.seq)
        if now is not None:
            left += sum(1 for t in self._aging() if t <= now)
        return left

    def _aging(self) -> list[float]:
        """When our requests not yet free by the newest answer leave a sliding window."""
        width = self._sliding_width()
        return [] if width is None else self._log.aging(*width, self._info_sent)

    def next_allowed(self, now: float, in_flight: int) -> float | None:
        """When the next request may leave (>= now), or None: not before another answer."""
        start = max(now, self.blocked_until)
        if not self.answered:
            return start if in_flight == 0 else None
        last = self.last_send if self.last_send is not None else now - 1e9
        gap = self.ceiling_gap
        if not self.headers_seen:
            if self.hidden.active:
                start = self.hidden.next_allowed(start, self.last_send)
            return max(start, last + gap)
        self._roll(start)
        left = self.left(start)
        sustained = self.window / self.limit if self.window and self.limit else 0.0
        if self.kind == "sliding":
            sustained *= SLIDING_MARGIN
        if left is not None and left <= 0:
            out = self._log.surely_out(self._guard) if self._guard else []
            frees = [t for t in [*self._aging(), *out] if start < t < 1e17]
            if frees:
                return max(last + gap, min([min(frees), *([self.hi] if self.hi else [])]))
            if self.hi is not None and self.hi > start:
                return max(last + gap, self.hi)
            if in_flight > 0:
                return None
            return max(start, last + max(gap, sustained))  # one request to learn the new state
        if self.kind == "sliding":
            # No window end to spread toward: the sustained pace, quicker while behind it.
            spread = sustained * max(0.5, 1 - (left or 0) / (self.limit or 1))
        elif left is not None and self.lo is not None and self.lo > start:
            # The last request should arrive before the window's end, not just leave before it;
            # the pace follows the window's count (the guard only holds requests back).
            # Aim at the middle of the end's bounds: a request that lands past the real end
            # counts in the next window (which its answer then shows), never as one too many.
            mid = (self.lo + self.hi) / 2 if self.hi is not None else self.lo
            end = mid - max(self.rtt or 0.0, 0.01)
            paced = max(1, self.left(start, guard=False) or 1)
            spread = max(0.0, end - last) / paced if last > now - 1e8 else 0.0
        else:
            spread = sustained
        return max(start, last + max(gap, spread))

    def _roll(self, now: float) -> None:
        """The window's end has surely passed: refill (fixed) or free one (sliding)."""
        if self.hi is None or now < self.hi:
            return
        self._floor = None
        # A window no longer than the reset's one-second resolution cannot be told fixed from
        # sliding: there a passed reset frees one request, as in a sliding one.
        short = self._coarse and (self.window or self._max_until) <= 1.0 + EPS
        if self.remaining is not None:
            if self.kind == "fixed" and self.limit is not None and not short:
                self.remaining = self.limit
                # Until an answer confirms the refill, count as a sliding window would: a
                # sliding window that passed for a fixed one then costs no 429.
                self._guard = self.window or self._max_until
            elif self._sliding_width() is None:
                # Only the reset tells when a request leaves: the oldest one did, now. (Where
                # the window's length is measured, ``_aging`` frees that one already.)
                self.remaining = max(self.remaining, self.seq - self.info_seq) + 1
        length = self.window or (self._max_until if self.kind == "fixed" else 0.0)
        if length > 0 and self.kind == "fixed" and self.lo is not None:
            steps = int((now - self.hi) // length) + 1
            self.lo += steps * length
            self.hi += steps * length
        else:
            self.lo = self.hi = None

    # -- answers ---------------------------------------------------------------------------
    def observe(
        self,
        r: Reading,
        *,
        seq: int,
        sent_at: float,
        received: float,
        wall: float,
        status: int = 200,
    ) -> bool:
        """Take one answer into account; True when the inferred policy changed (to log it)."""
        before = self.snapshot()
        self.answered = True
        self._new_window = False
        self._log.answered(seq, received, status != 429)
        if seq and (self.rtt is None or received - sent_at < self.rtt):
            self.rtt = received - sent_at
        if r.date is not None:
            self.clock.observe(r.date, sent_wall=wall - (received - sent_at), received_wall=wall)
        if r.retry_after is not None and status in (429, 503):
            after = retry_after_seconds(r.retry_after, wall + self.clock.skew)
            if after is not None:
                self.retry_hint = min(after, self.max_wait)
                if status == 503:  # a 429 closes the limiter in penalize(), from then on
                    self.blocked_until = max(self.blocked_until, received + self.retry_hint)
        if r.family is None:
            if not self.headers_seen and seq:
                self._hidden(r, seq, sent_at, received, wall, status)
            return self.snapshot() != before
        self.headers_seen = True
        self.family = r.family
        if r.limit is not None and r.limit > 0:
            self.limit = r.limit
        if r.window is not None and r.window > 0:
            self.window, self._window_stated = r.window, True
        fresh = seq > self.info_seq or seq == 0
        same = True  # the answer belongs to the window we follow
        if r.reset is not None:
            same = self._reset(r, seq, sent_at, received, wall, fresh)
        if r.remaining is not None and seq and same and self.kind == "fixed":
            # Each answer bounds what is left: its remaining minus everything sent after it;
            # the lowest bound holds even when requests overtook each other on the way.
            if self._new_window or self._floor is None:
                self._floor = r.remaining + seq
            else:
                self._floor = min(self._floor, r.remaining + seq)
        if r.remaining is not None and fresh and self._accept(r.remaining, seq, received):
            self.remaining, self.info_seq = r.remaining, max(seq, self.info_seq)
            self._obs_left = r.remaining
            self._guard = 0.0
            self._info_sent = sent_at
            if self.kind == "sliding" and self.limit is not None and seq:
                self._learn_sliding(seq, r.remaining)
        return self.snapshot() != before

    def _hidden(
        self, r: Reading, seq: int, sent_at: float, received: float, wall: float, status: int
    ) -> None:
        """An answer without rate headers: what it tells ``hidden`` (a 429's window end)."""
        if status != 429:
            self.hidden.answered(seq, received, True)
            return
        named = refusal_end(r.retry_after, sent_at, received, wall, self.clock, self.max_wait)
        self.hidden.refused_at(seq, received, named.end, named.hold, rounded=named.rounded)
        self.retry_hint = None  # the hidden quota closed the limiter (penalize reads it)

    def _accept(self, remaining: int, seq: int, now: float) -> bool:
        """Whether an answer's ``remaining`` replaces our count.

        Within one window a later request's answer may show more than we count now only if an
        earlier request overtook it on the way (its count misses that one): then our count
        stands. A new window (a rollover), a first answer or a sliding window's answer (there
        requests free one by one) always replaces it.
        """
        current = self.left(now)
        if self._new_window or current is None or seq == 0 or self.kind == "sliding":
            return True
        unanswered = self._log.in_flight(before=seq)
        return remaining - (self.seq - seq) - unanswered <= current

    def penalize(self, now: float, retry_after: float | None, strikes: int) -> None:
        """After a 429: no request before Retry-After, else the window's end, else a backoff."""
        if not self.headers_seen and self.hidden.active:
            self.blocked_until = max(self.blocked_until, self.hidden.blocked_until)
            return
        if retry_after is not None:
            until = now + min(retry_after, self.max_wait)
        elif self.hi is not None and self.hi > now:
            until = self.hi
        else:
            base = self.window / self.limit if self.window and self.limit else 1.0
            until = now + min(self.max_wait, max(base, 1.0) * 2.0 ** min(strikes, 6))
        if self.remaining is not None:
            self.remaining, self.info_seq = 0, self.seq
        self.blocked_until = max(self.blocked_until, until)

    @property
    def skew(self) -> float:
        return self.clock.skew

    def snapshot(self) -> Snapshot:
        window = round(self.window, 1) if self.window else None
        return (
            self.family,
            self.limit,
            window,
            self.reset_style,
            self.kind,
            round(self.clock.skew),
        )
