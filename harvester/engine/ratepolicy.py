"""How fast a server's announced policy lets us send: a pure state machine, no I/O, no clock.

``Policy.observe`` takes one answer's ``Reading`` (``rateheaders.py``) with the sequence number,
send and receive times of its request (our monotonic seconds) and the wall time of its receipt;
``next_allowed`` says when the next request may leave (None: after another answer); ``sent``
records one leaving. Our requests are kept in a ``SendLog`` (``ratelog.py``), the server's clock
skew in a ``ServerClock`` (``rateskew.py``). The rules:

- before any answer, one request at a time;
- the window's end is kept as bounds ``[lo, hi]`` in our monotonic time: exact for a UNIX-time
  reset (read against the server's clock), ``(sent + reset - 1, received + reset]`` for whole
  seconds, narrowed by each answer of the same window;
- what is left (the newest answer's ``remaining``, less every request sent after it or still
  unanswered before it; never more than any answer of this window allows) is spread evenly
  until the middle of those bounds; with nothing left, nothing leaves before ``hi``;
- the window's length is the one stated (``w=``), else the smallest jump of the reset at a
  rollover (``remaining`` refilled), else the longest time-to-reset seen; when ``hi`` passes, a
  fixed window refills and moves on, counted as a sliding one would until an answer confirms;
- a reset that moves later by less than a window (whatever the bounds' width), or a request
  sent after the window's end that finds no refill, shows a sliding window: our requests free
  one by one as they age out of it (reckoned by send times, once its length is measured and
  longer than the reset's resolution; until then at the announced reset), and the pace never
  exceeds ``limit / window``;
- a configured ceiling (``"N/Ts"``) is a minimum gap of ``T / N`` between requests, always;
  with no rate headers it is the only pace, and ``auto`` then sends one request at a time, at
  most ``AUTO_RATE`` per second.
"""

from __future__ import annotations

from harvester.engine.rateheaders import Reading, retry_after_seconds
from harvester.engine.ratelog import SendLog
from harvester.engine.rateskew import ServerClock

__all__ = ["AUTO_RATE", "Policy", "Snapshot"]

#: (family, limit, window to 0.1 s, reset style, kind, skew in whole seconds).
Snapshot = tuple[str | None, int | None, float | None, str | None, str, int]

#: Requests per second for ``rate_limit = "auto"`` against a server that sends no rate headers
#: (DBK's documented sandbox limit, 120/min, the smallest published figure).
AUTO_RATE = 2.0
#: A sliding window is paced this much below ``limit / window``.
SLIDING_MARGIN = 1.0
_EPS = 0.05


class Policy:
    """One API's inferred rate-limit policy and pace (module docstring)."""

    def __init__(self, *, ceiling: tuple[float, float] | None, auto: bool,
                 max_wait: float = 3600.0) -> None:  # fmt: skip
        self.ceiling_gap = ceiling[1] / ceiling[0] if ceiling and ceiling[0] > 0 else 0.0
        self.auto = auto
        self.max_wait = max_wait
        self.family: str | None = None
        self.limit: int | None = None
        self.window: float | None = None
        self._window_stated = False
        self._window_jump: float | None = None
        self._max_until = 0.0
        self.reset_style: str | None = None
        self.kind = "fixed"
        self.clock = ServerClock()
        self.answered = False
        self.headers_seen = False
        self.seq = 0
        self.last_send: float | None = None
        self.remaining: int | None = None
        self.info_seq = 0
        self.lo: float | None = None  # the current window's end, bounds (may be predicted)
        self.hi: float | None = None
        self._obs: tuple[float, float] | None = None  # the last window an answer showed
        self._obs_left: int | None = None  # remaining in that answer
        self.blocked_until = 0.0
        #: The last 429's or 503's Retry-After, in seconds, read against the server's clock.
        self.retry_hint: float | None = None
        self.capped_resets = 0
        self.rtt: float | None = None  # the shortest round trip seen
        self._info_sent = 0.0  # when the request whose answer gave ``remaining`` left
        #: Our recent requests (a sliding window's requests age out W seconds after they
        #: arrived: this is how we know when).
        self._log = SendLog()
        self._slide_w: tuple[float, float] | None = None
        self._new_window = False  # the answer being observed showed a new window
        self._floor: int | None = None  # min over this window's answers of remaining + seq
        self._coarse = False  # resets come as whole seconds from now
        self._guard = 0.0  # after a predicted refill: a sliding window's length to count by

    # -- sending -------------------------------------------------------------------------
    def sent(self, now: float) -> int:
        """Record one request leaving now; returns its sequence number."""
        self.seq += 1
        self.last_send = now
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

    def _sliding_width(self) -> tuple[float, float] | None:
        """Bounds on a sliding window's length, or None while they are not measured."""
        if self.kind != "sliding":
            return None
        if self._window_stated and self.window:
            return self.window, self.window
        # Only measured bounds will do: a time-to-reset counts from its answer, not from the
        # request's arrival, and rounds up, so it may be shorter than the window. Until the
        # counts bound it (``_learn_sliding``), requests free only at the announced reset; so
        # too where it may be no longer than the reset's resolution (whole seconds), as then a
        # fixed window fits the same answers.
        resolution = 1.0 if self._coarse or self.reset_style == "epoch" else 0.0
        if self._slide_w is None or self._slide_w[1] <= resolution + _EPS:
            return None
        return self._slide_w

    def next_allowed(self, now: float, in_flight: int) -> float | None:
        """When the next request may leave (>= now), or None: not before another answer."""
        start = max(now, self.blocked_until)
        if not self.answered:
            return start if in_flight == 0 else None
        last = self.last_send if self.last_send is not None else now - 1e9
        gap = self.ceiling_gap
        if not self.headers_seen:
            if self.auto:
                if in_flight > 0:
                    return None
                gap = max(gap, 1.0 / AUTO_RATE)
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
        short = self._coarse and (self.window or self._max_until) <= 1.0 + _EPS
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
    def observe(self, r: Reading, *, seq: int, sent_at: float, received: float, wall: float,
                status: int = 200) -> bool:  # fmt: skip
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

    def _reset(self, r: Reading, seq: int, sent_at: float, received: float, wall: float,
               fresh: bool) -> bool:  # fmt: skip
        """Take the answer's reset into the window bounds; False if it shows an older window."""
        assert r.reset is not None
        if r.epoch:
            self.reset_style = "epoch"
            until = r.reset - (wall + self.clock.skew)
            o_lo = o_hi = received + until
            o_lo, o_hi = o_lo - self.clock.early(), o_hi + self.clock.late()
        else:
            self.reset_style = "delta"
            self._coarse = r.coarse
            until = r.reset
            o_lo, o_hi = sent_at + r.reset - (1.0 if r.coarse else 0.0), received + r.reset
        if until > self.max_wait:
            self.capped_resets += 1
            o_lo = o_hi = received + self.max_wait
        else:  # an absurd reset says nothing about the window's length
            self._max_until = max(self._max_until, until)
        if not self._window_stated and self._window_jump is None and self._slide_w is None:
            self.window = self._max_until
        if not fresh:
            return self._obs is None or o_hi >= self._obs[0] - _EPS
        if self._obs is None:
            self._obs = (o_lo, o_hi)
            self._new_window = True
        else:
            refilled = self._refilled(r, seq)
            # Sent once the window we saw had surely ended (its end's upper bound, with the
            # server clock's uncertainty for a UNIX time), yet not refilled: no fixed window
            # does that, a sliding one does (its oldest request left, only that one is free).
            after = sent_at >= self._obs[1] + (_EPS if r.epoch else 0.0)
            if after and not refilled and self.kind == "fixed" and self._drained(r):
                self.kind = "sliding"
                self._obs = (o_lo, o_hi)
            elif o_lo > self._obs[1] + _EPS:  # the reset moved later than the window we saw
                whole = o_lo - self._obs[1] >= 0.75 * (self.window or 0.0)
                # Only a move shorter than a window whatever the bounds' width shows a sliding
                # one (wide bounds, from whole seconds and long round trips, hide a rollover).
                short = o_hi - self._obs[0] < 0.75 * (self.window or 0.0)
                if refilled or (whole and self._nearly_full(r)):
                    self._rollover(r, (o_lo, o_hi))
                elif short:
                    self.kind = "sliding"
                self._obs = (o_lo, o_hi)
            elif o_hi < self._obs[0] - _EPS:  # earlier than we thought: the newer answer wins
                self._obs = (o_lo, o_hi)
            elif refilled:  # a new window the reset's resolution cannot tell from the last
                self._rollover(r, None)
                self._obs = (o_lo, o_hi)
            elif self.kind == "sliding":  # each answer's reset is its own oldest request's
                self._obs = (o_lo, o_hi)
            else:
                lo, hi = max(self._obs[0], o_lo), min(self._obs[1], o_hi)
                self._obs = (lo, hi) if lo <= hi else (o_lo, o_hi)
        self.lo, self.hi = self._obs
        return True

    def _refilled(self, r: Reading, seq: int) -> bool:
        """A fixed window's rollover: (nearly) the whole limit back at once, where a sliding
        window frees only what left since."""
        if r.remaining is None or self.limit is None or self._obs_left is None:
            return False
        expected = self._obs_left - (seq - self.info_seq)
        in_flight = self._log.in_flight()
        return r.remaining - expected > self.limit / 2 and r.remaining >= self.limit - in_flight - 1

    def _drained(self, r: Reading) -> bool:
        """Less than half the limit left: what a fixed window never shows just after a refill."""
        return r.remaining is not None and self.limit is not None and r.remaining < self.limit / 2

    def _nearly_full(self, r: Reading) -> bool:
        full = r.remaining is not None and self.limit is not None
        return full and r.remaining >= self.limit - self._log.in_flight() - 1  # type: ignore[operator]

    def _rollover(self, r: Reading, o: tuple[float, float] | None) -> None:
        """A fixed window rolled over; its reset's jump measures the window (exact for a UNIX
        time; for whole seconds, the longest time-to-reset once a jump agrees with it)."""
        self.kind = "fixed"
        self._new_window = True
        if o is None or self._obs is None:
            return
        if r.epoch:
            jump = o[1] - self._obs[1]
        else:
            jump = (o[0] + o[1] - self._obs[0] - self._obs[1]) / 2
            if abs(jump - self._max_until) > 1.0:
                return
            jump = self._max_until
        self._window_jump = min(self._window_jump or jump, jump)
        if not self._window_stated:
            self.window = self._window_jump

    def _learn_sliding(self, seq: int, remaining: int) -> None:
        """Bound a sliding window's length from which of our requests the server still counts.

        The answer to request ``seq`` counted ``limit - remaining`` requests: if they are our
        latest allowed ones up to ``seq``, the oldest of them is still inside the window and the
        one before it has left, so ``sent[seq] - received[oldest] < W <= received[seq] -
        sent[before]``. Bounds that contradict earlier ones mean the window is not sliding after
        all (a fixed window as long as the reset's resolution looks alike).
        """
        assert self.limit is not None
        span = self._log.counted_span(seq, self.limit - remaining)
        if span is None:
            return
        lo, hi = span
        if self._slide_w is not None:
            lo, hi = max(lo, self._slide_w[0]), min(hi, self._slide_w[1])
        # A sliding window is never shorter than a time-to-reset it announced (less the
        # reset's resolution).
        floor = self._max_until - (1.0 if self._coarse or self.reset_style == "epoch" else 0.0)
        if lo <= hi and hi >= floor - _EPS:
            self._slide_w = (lo, hi)
            if not self._window_stated:
                self.window = min(hi, self._max_until or hi)
        else:  # no sliding window explains the counts: a fixed one it is
            self.kind, self._slide_w = "fixed", None
            if not self._window_stated:
                self.window = self._window_jump or self._max_until

    def penalize(self, now: float, retry_after: float | None, strikes: int) -> None:
        """After a 429: no request before Retry-After, else the window's end, else a backoff."""
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
    def window_source(self) -> str | None:
        """How the window's length is known: "stated" (w=), "measured" (a reset's jump or a
        sliding window's counts) or "at least" (the longest time-to-reset seen)."""
        if not self.window:
            return None
        if self._window_stated:
            return "stated"
        return "measured" if self._window_jump is not None or self._slide_w else "at least"

    @property
    def skew(self) -> float:
        return self.clock.skew

    def snapshot(self) -> Snapshot:
        window = round(self.window, 1) if self.window else None
        return (self.family, self.limit, window, self.reset_style, self.kind,
                round(self.clock.skew))  # fmt: skip
