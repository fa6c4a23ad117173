"""A quota the server never announces, learned from its 429s: pure, no I/O, no clock.

``HiddenQuota`` follows one API whose answers carry no rate-limit headers. Until its first
refusal it paces nothing (``next_allowed`` is ``now``). Each 429 is ``refused`` with the times of
its request and, where it came with ``Retry-After``, the window's end it names (our monotonic
seconds, as bounds: a value in whole seconds is rounded). From then on:

- **a refusal closes the API** until that end (else for a backoff from 1 s doubling with each
  refusal in a row, jittered down by up to half); a refusal of a request sent before the last
  one closed it (it was already on its way) narrows that end and changes nothing else;
- **fixed windows are read off the ends**: the window's ends repeat with its length, so the
  ends seen (at least two distinct ones) fit one phase and one length ``W``, a gap between two
  of them divided by a whole number, no shorter than any time-to-end seen; ``_settle`` takes
  the shortest such ``W`` once it is close to that time-to-end and the next end it predicts is
  known to within a tenth of it. Then ``limit`` is the most requests the server allowed in one
  such window, by our requests' estimated arrival (half-way through their round trip), and
  the pace lets
  ``limit`` requests arrive in each window, none within ``margin`` of its edges;
- **otherwise an adaptive rate** (the AWS SDKs' adaptive retry mode: on a refusal the rate is
  cut to ``BETA`` of the lesser of the curve's rate and what the server allowed lately; the
  first one starts from what it allowed per second until the API reopens; then it regrows
  along a cubic curve back to it in ``K`` seconds and beyond, which probes upward), requests
  evenly spaced: at most ``rate * W + 1`` in any W seconds, so a rate below the quota's never
  draws a refusal from a fixed or a sliding window. Ends that fit no phase mark the window
  ``sliding``;
- **changes both ways**: a refusal in a settled window sets ``limit`` to what that window took
  (down at once); every ``PROBE_EVERY`` windows without one, a window is allowed one request
  more, and each such probe the server allows raises ``limit`` (doubling the step while they
  pass). Ends that stop fitting the phase forget the older ones and unsettle the window.
"""

from __future__ import annotations

import collections
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BETA", "PROBE_EVERY", "HiddenQuota"]

#: The adaptive rate's cut on a refusal (botocore's CubicCalculator cuts to 0.7; a shallower
#: cut loses less of a quota it had nearly right, and the rate it cuts from is already no more
#: than what the server allowed lately, so a quota that fell is still followed at once).
BETA = 0.9
#: A settled fixed window is probed for a higher limit once in this many windows.
PROBE_EVERY = 8
_MIN_RATE = 0.02  # requests per second the adaptive rate never goes below
_ENDS_KEPT = 24
#: K, the seconds the cubic curve takes to regrow to the rate refused: this many times the
#: longest time-to-end seen (about a window), at least ``_K_MIN``: a slower curve than
#: botocore's (C = 0.4: 2 s at 10 requests/s) draws fewer refusals.
_K_WINDOWS = 6.0
_K_MIN = 2.0


@dataclass(slots=True)
class _Req:
    sent: float
    received: float | None = None
    allowed: bool = True


class HiddenQuota:
    """What one API's refusals show of its quota, and the pace that follows (module docstring)."""

    def __init__(self, rand: Callable[[], float] | None = None) -> None:
        self._rand = rand or random.random
        self.active = False  # a refusal was seen
        self.refused = 0
        self.blocked_until = 0.0
        self.limit: int | None = None
        self.window: float | None = None
        self.phase: float | None = None  # a window end (our monotonic seconds), when settled
        self.margin = 0.0
        self.kind: str | None = None  # "fixed" (settled), "sliding" (no phase fits), None
        self.rate: float | None = None  # the adaptive rate, requests per second
        self._w_max = 0.0
        self._k = 0.0
        self._last_fail = 0.0
        self._closed_at = -1e18  # when the last refusal that counted closed the API
        self._strikes = 0
        self._longest = 0.0  # the longest time-to-end seen
        self._ends: list[tuple[float, float]] = []  # distinct window ends seen, as bounds
        self._log: collections.OrderedDict[int, _Req] = collections.OrderedDict()
        self._rtt: float | None = None
        self._probe_in = PROBE_EVERY
        self._probing: int | None = None  # the window (index) allowed one request more
        self._step = 1
        self._counted: int | None = None  # the last window found full

    # -- our requests ----------------------------------------------------------------------
    def sent(self, seq: int, now: float) -> None:
        self._log[seq] = _Req(now)
        while len(self._log) > 4096:
            self._log.popitem(last=False)

    def answered(self, seq: int, now: float, allowed: bool) -> None:
        """Request ``seq``'s answer came at ``now``: allowed, or refused (a 429)."""
        req = self._log.get(seq)
        if req is None:
            return
        req.received, req.allowed = now, allowed
        rtt = now - req.sent
        self._rtt = rtt if self._rtt is None else min(self._rtt, rtt)
        if allowed:
            self._strikes = 0
            self._passed_probe(req)

    def _arrival(self, r: _Req) -> float:
        """When the server saw a request: half-way through its round trip (estimated)."""
        if r.received is not None:
            return (r.sent + r.received) / 2
        return r.sent + (self._rtt or 0.0) / 2

    # -- refusals --------------------------------------------------------------------------
    def refused_at(self, seq: int, now: float, end: tuple[float, float] | None) -> None:
        """Request ``seq`` was refused; ``end``: where its Retry-After puts the window's end."""
        self.answered(seq, now, False)
        req = self._log.get(seq)
        sent = req.sent if req is not None else now
        self.refused += 1
        self.active = True
        if end is not None:
            self._longest = max(self._longest, end[0] - now)
            self._add_end(end)
        if sent <= self._closed_at:  # on its way before the API closed: the same refusal
            if end is not None:
                self.blocked_until = max(self.blocked_until, end[1])
                self._settle()
            return
        self._closed_at = now
        self._strikes += 1
        if end is not None:
            self.blocked_until = max(self.blocked_until, end[1])
        else:
            wait = min(60.0, 2.0 ** (self._strikes - 1)) * (1 - self._rand() / 2)
            self.blocked_until = max(self.blocked_until, now + wait)
        self._settle()
        if self.kind == "fixed" and self.phase is not None:
            self._dropped(req)
        elif self._strikes == 1:  # refused again with none allowed between: still closed, a
            self._cut(now)  # longer backoff's matter, not the rate's

    def _cut(self, now: float) -> None:
        """The adaptive rate's response to a refusal (botocore's CubicCalculator)."""
        if self.rate is None:  # the first: what the server allowed per second so far
            allowed = [r for r in self._log.values() if r.allowed and r.received is not None]
            if not allowed:  # nothing allowed yet says nothing of a rate: the wait alone
                return
            first = min(r.sent for r in allowed)
            span = max(self.blocked_until - first, 1e-3)
            use = max(_MIN_RATE, len(allowed) / span)
        else:  # the curve's rate, or what the server allowed lately if less (botocore's min)
            use = min(self._rate_at(now), max(_MIN_RATE, self._allowed_rate(now)))
        self._w_max = use
        self.rate = max(_MIN_RATE, BETA * use)
        self._last_fail = now
        self._k = max(_K_MIN, _K_WINDOWS * self._longest)

    def _allowed_rate(self, now: float) -> float:
        """Requests allowed per second over the last two longest times-to-end (at least 2 s)."""
        span = max(2.0, 2 * self._longest)
        return sum(1 for r in self._log.values() if r.allowed and r.sent > now - span) / span

    def _rate_at(self, now: float) -> float:
        assert self.rate is not None
        c = self._w_max * (1 - BETA) / self._k**3
        return max(_MIN_RATE, c * (now - self._last_fail - self._k) ** 3 + self._w_max)

    def _add_end(self, end: tuple[float, float]) -> None:
        lo, hi = end
        for i, (a, b) in enumerate(self._ends):
            if lo <= b and a <= hi:  # the same end: narrow it
                self._ends[i] = (max(a, lo), min(b, hi))
                return
        self._ends.append(end)
        self._ends.sort()
        del self._ends[:-_ENDS_KEPT]

    # -- fixed windows -------------------------------------------------------------------------
    def _settle(self) -> None:
        """Find one window length and phase that all distinct ends fit (module docstring).

        The candidates are each gap between two ends divided by 1, 2, ...: the shortest one
        no shorter than the longest time-to-end seen that every end fits is taken, if it is
        within a quarter of that time-to-end (a refusal just after a window's first requests
        shows nearly all of it), and if it predicts the next end to a tenth of a window.
        """
        ends = self._ends
        if len(ends) < 2:
            return
        floor = max(self._longest, 0.2)
        mids = [(a + b) / 2 for a, b in ends]
        candidates = sorted({(b - a) / k for a, b in itertools.combinations(mids, 2)
                             for k in range(1, 65) if (b - a) / k >= floor})  # fmt: skip
        fits = [w for w in candidates if self._phase(w) is not None]
        if not fits:
            if len(ends) >= 3:  # no phase fits: a sliding window (or a changed one)
                self.kind, self.phase = "sliding", None
                del self._ends[: len(ends) // 2]
            return
        w = fits[0]
        span = self._phase(w)
        assert span is not None
        k = round((max(mids) - span[0]) / w) + 1
        spread = (span[1] - span[0]) * (1 + 1 / max(1, k))
        if w > 1.25 * floor + 1.0 or spread > 0.1 * w:
            return
        self.kind, self.window, self.phase = "fixed", w, span[1]
        self.margin = min(0.1 * w, max(0.02, spread))
        self.limit = self._most_in_a_window()

    def _phase(self, w: float) -> tuple[float, float] | None:
        """Bounds on a window end (near the first) if every end seen fits length ``w``."""
        a0, b0 = self._ends[0]
        lo, hi = a0, b0
        for a, b in self._ends[1:]:
            k = round(((a + b) / 2 - (a0 + b0) / 2) / w)
            if k < 1:
                return None
            lo, hi = max(lo, a - k * w), min(hi, b - k * w)
            if lo > hi:
                return None
        return lo, hi

    def _index(self, t: float) -> int:
        assert self.phase is not None and self.window is not None
        return int((t - self.phase) // self.window)

    def _most_in_a_window(self) -> int:
        counts: collections.Counter[int] = collections.Counter(
            self._index(self._arrival(r)) for r in self._log.values() if r.allowed
            and r.received is not None
        )  # fmt: skip
        return max(1, max(counts.values(), default=1))

    def _in_window(self, index: int) -> int:
        return sum(1 for r in self._log.values() if r.allowed and self._index(self._arrival(r))
                   == index)  # fmt: skip

    def _dropped(self, req: _Req | None) -> None:
        """A refusal in a settled window: the quota is what that window took (or a probe failed)."""
        if req is None:
            return
        index = self._index(self._arrival(req))
        took = self._in_window(index)
        self._probe_in, self._step = PROBE_EVERY, 1
        if self._probing == index:
            self._probing = None
            return
        self._probing = None
        self.limit = max(1, min(self.limit or took, took))

    def _passed_probe(self, req: _Req) -> None:
        if self._probing is None or self.phase is None or self.limit is None:
            return
        index = self._index(self._arrival(req))
        if index == self._probing and self._in_window(index) > self.limit:
            self.limit += self._step
            self._step *= 2
            self._probing = None
            self._probe_in = 1  # probe again at once while the server keeps allowing more

    # -- the pace --------------------------------------------------------------------------
    def next_allowed(self, now: float, last_send: float | None) -> float:
        """When the next request may leave (>= now)."""
        t = max(now, self.blocked_until)
        if not self.active:
            return t
        if self.kind == "fixed" and self.phase is not None:
            return self._fixed(t)
        if self.rate is not None and last_send is not None:
            t = max(t, last_send + 1.0 / self._rate_at(t))
        return t

    def _fixed(self, t: float) -> float:
        """The earliest time from ``t`` whose request arrives inside a window with room."""
        assert self.phase is not None and self.window is not None and self.limit is not None
        owd = (self._rtt or 0.0) / 2
        for _ in range(4):
            arrive = t + owd
            index = self._index(arrive)
            start = self.phase + index * self.window
            if arrive < start + self.margin:
                t = start + self.margin - owd
                continue
            if arrive > start + self.window - self.margin:
                t = start + self.window + self.margin - owd
                continue
            room = self.limit + (1 if index == self._probing else 0)
            if self._in_window(index) < room:
                return t
            self._new_window(index)
            t = start + self.window + self.margin - owd
        return t

    def _new_window(self, full: int) -> None:
        """Window ``full`` is used up: count down to the next probe of a higher limit."""
        if self._probing is not None and self._probing < full:
            self._probing = None
        if full == self._counted:
            return
        self._counted = full
        self._probe_in -= 1
        if self._probe_in <= 0 and self._probing is None:
            self._probing = full + 1
            self._probe_in = PROBE_EVERY

    def describe(self) -> str:
        """What was learned, in words (as ``-v`` logs it)."""
        if self.kind == "fixed" and self.limit and self.window:
            return f"{self.limit} per {self.window:.2f}s, fixed window (learned from 429s)"
        if self.rate is not None:
            kind = "sliding window, " if self.kind == "sliding" else ""
            return f"{kind}adaptive {self.rate:.2f}/s (learned from 429s)"
        return "429s seen, no quota inferred yet"
