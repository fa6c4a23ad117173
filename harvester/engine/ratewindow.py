"""What a server's rate-limit answers say of its window: where it ends, how long, fixed or sliding.

Pure, no I/O, no clock: the base of ``ratepolicy.Policy``, which paces by it. Each answer's reset
(``Policy.observe`` → ``_reset``) is read into the rules:

- the window's end is kept as bounds ``[lo, hi]`` in our monotonic time: exact for a UNIX-time
  reset (read against the server's clock, ``rateskew.py``), ``(sent + reset - 1, received +
  reset]`` for whole seconds, narrowed by each answer of the same window;
- the window's length is the one stated (``w=``), else the smallest jump of the reset at a
  rollover (``remaining`` refilled), else the longest time-to-reset seen;
- a reset that moves later by less than a window (whatever the bounds' width), or a request
  sent after the window's end that finds no refill, shows a sliding window; its length is then
  bounded by which of our requests the server still counts (``_learn_sliding``), and counts no
  sliding window explains make it fixed again.
"""

from __future__ import annotations

from harvester.engine.rateheaders import Reading
from harvester.engine.ratelog import SendLog
from harvester.engine.rateskew import ServerClock

__all__ = ["EPS", "WindowReading"]

#: Slack on compared times (seconds): below it two instants count as one.
EPS = 0.05


class WindowReading:
    """The window one API's answers show (module docstring); ``Policy`` adds the pace."""

    def __init__(self, *, max_wait: float) -> None:
        self.max_wait = max_wait
        self.limit: int | None = None
        self.window: float | None = None
        self.kind = "fixed"
        #: Whether the answers showed the kind: a refill (fixed) or a request freed alone
        #: (sliding). Until then ``kind`` is "fixed" by assumption.
        self.kind_seen = False
        self.reset_style: str | None = None
        self.clock = ServerClock()
        self.capped_resets = 0
        self.info_seq = 0  # the request whose answer gave the count we follow
        self.lo: float | None = None  # the current window's end, bounds (may be predicted)
        self.hi: float | None = None
        #: Our recent requests (a sliding window's requests age out W seconds after they
        #: arrived: this is how we know when).
        self._log = SendLog()
        self._window_stated = False
        self._window_jump: float | None = None
        self._max_until = 0.0
        self._obs: tuple[float, float] | None = None  # the last window an answer showed
        self._obs_left: int | None = None  # remaining in that answer
        self._slide_w: tuple[float, float] | None = None
        self._new_window = False  # the answer being observed showed a new window
        self._coarse = False  # resets come as whole seconds from now

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
        if self._slide_w is None or self._slide_w[1] <= resolution + EPS:
            return None
        return self._slide_w

    def _reset(
        self, r: Reading, seq: int, sent_at: float, received: float, wall: float, fresh: bool
    ) -> bool:
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
            return self._obs is None or o_hi >= self._obs[0] - EPS
        if self._obs is None:
            self._obs = (o_lo, o_hi)
            self._new_window = True
        else:
            refilled = self._refilled(r, seq)
            # Sent once the window we saw had surely ended (its end's upper bound, with the
            # server clock's uncertainty for a UNIX time), yet not refilled: no fixed window
            # does that, a sliding one does (its oldest request left, only that one is free).
            after = sent_at >= self._obs[1] + (EPS if r.epoch else 0.0)
            if after and not refilled and self.kind == "fixed" and self._drained(r):
                self.kind, self.kind_seen = "sliding", True
                self._obs = (o_lo, o_hi)
            elif o_lo > self._obs[1] + EPS:  # the reset moved later than the window we saw
                whole = o_lo - self._obs[1] >= 0.75 * (self.window or 0.0)
                # Only a move shorter than a window whatever the bounds' width shows a sliding
                # one (wide bounds, from whole seconds and long round trips, hide a rollover).
                short = o_hi - self._obs[0] < 0.75 * (self.window or 0.0)
                if refilled or (whole and self._nearly_full(r)):
                    self._rollover(r, (o_lo, o_hi))
                elif short:
                    self.kind, self.kind_seen = "sliding", True
                self._obs = (o_lo, o_hi)
            elif o_hi < self._obs[0] - EPS:  # earlier than we thought: the newer answer wins
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
        self.kind, self.kind_seen = "fixed", True
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
        if lo <= hi and hi >= floor - EPS:
            self._slide_w = (lo, hi)
            if not self._window_stated:
                self.window = min(hi, self._max_until or hi)
        else:  # no sliding window explains the counts: a fixed one it is
            self.kind, self._slide_w = "fixed", None
            if not self._window_stated:
                self.window = self._window_jump or self._max_until

    @property
    def window_source(self) -> str | None:
        """How the window's length is known: "stated" (w=), "measured" (a reset's jump or a
        sliding window's counts) or "at least" (the longest time-to-reset seen)."""
        if not self.window:
            return None
        if self._window_stated:
            return "stated"
        return "measured" if self._window_jump is not None or self._slide_w else "at least"
