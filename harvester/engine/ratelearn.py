"""A quota the server never announces, learned from its 429s: pure, no I/O, no clock.

``HiddenQuota`` follows one API whose answers carry no rate-limit headers. Until its first
refusal it paces nothing (``next_allowed`` is ``now``). Each 429 is ``refused_at`` with its
request's sequence number and, where it came with ``Retry-After``, the bounds of the window end
it names (our monotonic seconds: a value in whole seconds is rounded). From then on:

- **a refusal closes the API** until that end (else for a backoff from 1 s doubling with each
  refusal in a row, jittered down by up to half; once the adaptive rate runs, from 2.5 of its
  intervals, at most 1 s, as its cut already slows the pace); a refusal of a request that was
  already on its way when the API closed narrows that end and changes nothing else. Under a
  fitted window the API reopens as soon as the window has room again, which a whole-second
  ``Retry-After`` overstates by up to a second, but never before the end's lower bound (the
  server's stated time less its rounding);
- **the window is read off the refusals** (``ratefit.py``): a fixed one from ends that share
  a phase; once the ends fit no fixed window, a sliding one from ends that are each the
  ``limit``-th latest request allowed plus the window. Once one fits, the pace lets ``limit``
  requests arrive in each fixed window (counted by their estimated arrival, half-way through
  the round trip), none within ``margin`` (at least half a round trip) of its edges, or at
  most ``limit`` in any sliding
  window (plus ``margin``);
- **until then an adaptive rate** (``ratecubic.py``: cut on a refusal, regrowing along a cubic
  curve, requests evenly spaced); ends that fit no fixed window mark the kind ``sliding``;
- **changes both ways**: a refusal under a fitted window sets ``limit`` to what that window
  held (down at once; unless the end it names is not that window's: then an arrival placed
  across an edge shows the phase off, and only the window is read again) and reads the window
  again, from that window on where the limit fell
  (the windows before allowed more than it does now); every ``PROBE_EVERY`` windows one request
  more is let through, and each such probe the server allows raises ``limit`` (doubling the
  step while they pass, probing again at once).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable

from harvester.engine.ratearrivals import NEVER, Arrivals, Req
from harvester.engine.ratecubic import CubicRate
from harvester.engine.ratefit import NO_FIT, Fit, fit_fixed, fit_sliding, fixed_limit, holds
from harvester.engine.ratephase import Bounds, WindowEnds

__all__ = ["PROBE_EVERY", "HiddenQuota"]

#: Under a fitted window, one request more is let through once in this many windows.
PROBE_EVERY = 8
#: Under the adaptive rate, a refusal without Retry-After closes for this many of its intervals.
BACKOFF_INTERVALS = 2.5
#: K, the seconds the adaptive rate takes to regrow to the rate refused: this many times the
#: longest time-to-end seen (about a window), at least ``_K_MIN``.
_K_WINDOWS = 6.0
_K_MIN = 4.0


class HiddenQuota:
    """What one API's refusals show of its quota, and the pace that follows (module docstring)."""

    def __init__(self, rand: Callable[[], float] | None = None) -> None:
        self._rand = rand or random.random
        self.active = False  # a refusal was seen
        self.blocked_until = NEVER
        self.fit: Fit | None = None  # the window read off the refusals, once one fits
        self.limit: int | None = None
        self.kind: str | None = None  # "fixed" or "sliding" once seen, else None
        self.cubic = CubicRate()
        self._closed_at = -1e18  # when the last refusal that counted closed the API
        self._cut_until = NEVER  # the first refusal's end (upper bound)
        self._strikes = 0
        self.ends = WindowEnds()  # the window ends the refusals named
        self.arrivals = Arrivals()  # our requests, as the server saw them
        self._probe_at = NEVER  # when the next probe may go
        self._probe: int | None = None  # the probe in flight (sequence number)
        self._step = 1
        self._first: tuple[float, float] | None = None  # the first cut (time, k) while alone
        self._lowered: int | None = None  # the fitted window the limit was last lowered in

    @property
    def window(self) -> float | None:
        return self.fit.window if self.fit else None

    @property
    def rate(self) -> float | None:
        return self.cubic.rate

    # -- our requests ----------------------------------------------------------------------
    def sent(self, seq: int, now: float) -> None:
        """Request ``seq`` leaves at ``now`` (a probe if it is one more than the limit)."""
        self.arrivals.sent(seq, now)
        probing = self.fit and self.limit and self._probe is None and now >= self._probe_at
        # A probe only if the server surely holds ``limit`` besides it: only then does its being
        # allowed show room for more.
        if probing and self._held(self.arrivals.owd_arrival(now), narrow=True) > (self.limit or 0):
            self._probe = seq

    def answered(self, seq: int, now: float, allowed: bool) -> None:
        """Request ``seq``'s answer came at ``now``: allowed, or refused (a 429)."""
        req = self.arrivals.answered(seq, now, allowed)
        if req is None:
            return
        if allowed and req.sent >= self._closed_at:  # (one sent before shows nothing new)
            self._strikes = 0
            # Sent after a refusal: the ends named so far had passed when it arrived.
            if self.ends.passed(now):
                self._recut(now)
                self._settle()
            if seq == self._probe and self.limit is not None:  # the server took one more
                self.limit += self._step
                self._step *= 2
                self._probe, self._probe_at = None, now

    # -- refusals --------------------------------------------------------------------------
    def refused_at(
        self,
        seq: int,
        now: float,
        end: tuple[float, float] | None,
        hold: float | None = None,
        *,
        rounded: bool = False,
    ) -> None:
        """Request ``seq`` was refused; ``end``: where its Retry-After puts the window's end
        (``rounded``: a duration in whole seconds, so the end is as likely anywhere in those
        bounds); ``hold``: a wait instead of the backoff where Retry-After names no usable end
        (one beyond the caller's cap, which is then the wait)."""
        self.answered(seq, now, False)
        req = self.arrivals.log.get(seq) or Req(now, now, False)
        self.active = True
        arrival = self.arrivals.arrival(req)
        if end is not None:
            end = self.ends.add(end, sent=req.sent, arrival=arrival, now=now)
            self._cut_until = max(self._cut_until, end[1])  # the adaptive rate's first cut
        self._refused(seq, req, now, end, hold)
        if end is not None:
            self.blocked_until = max(self.blocked_until, self._reopen(end, rounded))

    def _reopen(self, end: Bounds, rounded: bool) -> float:
        """When the API reopens after a refusal naming ``end`` (bounds): at the latest, the end's
        upper bound; under a fitted window, as soon as it has room again (a whole-second
        Retry-After rounds up by up to a second; the fitted edges do not), but never before the
        end's lower bound (the server's stated time less its rounding)."""
        lo, hi = end
        if self.fit is None or self.limit is None:
            # A rounded end is as likely early as late in its bounds: one request at their
            # middle finds out (refused, it narrows them; allowed, the end had passed).
            return (lo + hi) / 2 if rounded else hi
        return min(hi, max(lo, self._windowed(lo, probe=False)))

    def _refused(
        self, seq: int, req: Req, now: float, end: Bounds | None, hold: float | None
    ) -> None:
        """``refused_at`` after the end's bounds are taken: the backoff, the limit, the fit."""
        if req.sent <= self._closed_at:  # on its way before the API closed: the same refusal
            if end is not None:
                self._settle()
            return
        self._closed_at = now
        self._strikes += 1
        if hold is not None:
            self.blocked_until = max(self.blocked_until, now + hold)
        elif end is None:
            wait = min(60.0, self._first_wait() * 2.0 ** (self._strikes - 1))
            wait *= 1 - self._rand() / 2
            self.blocked_until = max(self.blocked_until, now + wait)
        probe, self._probe = self._probe == seq, None
        if self.fit is not None:
            self._probe_at = now + PROBE_EVERY * self.fit.window
            if probe:  # the limit holds: probe again later, from a step of one
                self._step = 1
                return
            if not self._names_fitted_end(end, self.arrivals.arrival(req)):
                # The refusal names another end than the window it was fitted to: an arrival
                # placed across an edge shows the phase off, not the quota lower; the window
                # is read again, not kept.
                self.fit = None
                self._settle()
                return
            arrival = self.arrivals.arrival(req)
            limit = max(1, min(self.limit or 1, self._held(arrival)))
            if limit < (self.limit or 0) and self.fit.kind == "fixed":
                index = self._index(arrival)
                if self._lowered == index - 1:
                    # Lowered in the window before too: the phase is off, not the quota lower
                    # twice; the adaptive rate until the refusals show the window again.
                    self.fit, self._lowered = None, None
                    self._cut(now)
                    return
                # A lower quota in the same windows: the limit falls at once and the windows
                # keep their length and phase; the windows before this one no longer show
                # the quota (they allowed more), so later readings start from this one.
                self.arrivals.since = self.fit.end + index * self.fit.window
                self.limit, self._lowered = limit, index
                return
            self.limit = limit
        self._settle()
        # Refused again with none allowed between: still closed, a matter for the backoff,
        # not the rate.
        if self.fit is None and self._strikes == 1:
            self._cut(now)

    def _cut(self, now: float) -> None:
        """Cut the adaptive rate (once some request was allowed)."""
        if self.arrivals.allowed_sends():
            k = max(_K_MIN, _K_WINDOWS * self.ends.longest)
            self._first = (now, k) if self.cubic.rate is None else None
            self.cubic.cut(now=now, allowed_rate=self._allowed_rate(now), k=k)

    def _recut(self, now: float) -> None:
        """A request allowed at ``now`` shows the first refusal's end before the bound its
        first cut counted to: that cut again, from the rate so counted (while it is the
        adaptive rate's only cut)."""
        if self._first is None or self.fit is not None or now >= self._cut_until:
            return
        at, k = self._first
        self._cut_until = now
        sends = [t for t in self.arrivals.allowed_sends() if t < at]
        self.cubic = CubicRate()
        self.cubic.cut(now=at, allowed_rate=_densest(sends, now), k=k)

    def _names_fitted_end(self, end: Bounds | None, arrival: float) -> bool:
        """Whether a refusal's named ``end`` (None: unknown) may be the end of the fitted fixed
        window its ``arrival`` falls in (a sliding fit: always)."""
        fit = self.fit
        if end is None or fit is None or fit.kind != "fixed":
            return True
        edge = fit.end + (self._index(arrival) + 1) * fit.window
        return end[0] - fit.margin <= edge <= end[1] + fit.margin

    def _first_wait(self) -> float:
        """The backoff after a first refusal in a row with no Retry-After: 1 s, or once the
        adaptive rate is running, a few of its intervals (its cut already slows the pace)."""
        if self.cubic.rate is None:
            return 1.0
        return min(1.0, BACKOFF_INTERVALS / self.cubic.rate)

    def _allowed_rate(self, now: float) -> float:
        """Requests allowed per second: the first time, from any of them until the API reopens,
        the most of those rates (an idle stretch before the requests that met the refusal
        does not water it down); then over the last two longest times-to-end (at least 2 s)."""
        allowed = self.arrivals.allowed_sends()
        if self.cubic.rate is None:
            return _densest(allowed, max(self._cut_until, self.blocked_until))
        span = max(2.0, 2 * self.ends.longest)
        return sum(1 for t in allowed if t > now - span) / span

    def _settle(self) -> None:
        """Read the window off the refusals again (``ratefit.py``). A fixed window read before
        stays while the latest ends still fall on its edges, unless the new reading is the
        same window, more closely read."""
        allowed, refused = self.arrivals.latest()
        ends = self.ends
        fit = fit_fixed(ends.ends, ends.time_to_end, allowed, refused)
        if fit is NO_FIT:  # no fixed window explains the ends: forget the older ones
            self.kind = "sliding"
            ends.forget_older()
            fit = None
        if fit is None and self.kind == "sliding":  # ends at one phase mean a fixed window
            fit = fit_sliding(ends.named, ends.time_to_end, allowed)
        old = self.fit
        kept = old is not None and old.kind == "fixed" and holds(old, ends.ends)
        if old is not None and kept and (fit is None or not _same(fit, old)):
            return
        if fit is None:
            self.fit = None  # the old phase no longer holds: the adaptive rate until one does
            return
        if old is None:
            self._probe_at = (ends.named[-1][0] if ends.named else NEVER) + PROBE_EVERY * fit.window
        self.fit, self.kind = fit, fit.kind
        if fit.limit is not None:
            self.limit = fit.limit
        else:
            self.limit = fixed_limit(fit, allowed, refused)

    # -- the pace --------------------------------------------------------------------------
    def _index(self, t: float) -> int:
        assert self.fit is not None
        return int((t - self.fit.end) // self.fit.window)

    def _held(self, arrive: float, *, narrow: bool = False) -> int:
        """Our requests (allowed or in flight) the fitted window holds as one arriving at
        ``arrive`` arrives: at most (``narrow``: at least, as far as the fit knows)."""
        assert self.fit is not None
        allowed, _ = self.arrivals.latest()
        fit = self.fit
        if fit.kind == "fixed":
            start = fit.end + self._index(arrive) * fit.window + (fit.margin if narrow else 0.0)
        else:
            start = arrive - fit.window + (fit.margin if narrow else -fit.margin)
        return bisect.bisect_right(allowed, arrive) - bisect.bisect_right(allowed, start)

    def next_allowed(self, now: float, last_send: float | None) -> float:
        """When the next request may leave (>= now)."""
        t = max(now, self.blocked_until)
        if not self.active:
            return t
        if self.fit is not None and self.limit is not None:
            return self._windowed(t)
        if self.cubic.rate is not None and last_send is not None:
            t = max(t, last_send + 1.0 / self.cubic.at(t))
        return t

    def _windowed(self, t: float, *, probe: bool = True) -> float:
        """The earliest time from ``t`` whose request the fitted window has room for (one more
        when a probe is due and ``probe``)."""
        assert self.fit is not None and self.limit is not None
        fit, owd = self.fit, (self.arrivals.rtt or 0.0) / 2
        due = probe and self._probe is None and t >= self._probe_at
        room = self.limit + (1 if due else 0)
        allowed, _ = self.arrivals.latest()
        for _ in range(8):
            arrive = t + owd
            if fit.kind == "sliding":
                held = [a for a in allowed if a > arrive - fit.window - fit.margin]
                if len(held) < room:
                    return t
                t = held[len(held) - room] + fit.window + fit.margin - owd + 1e-6
                continue
            start = fit.end + self._index(arrive) * fit.window
            # An arrival is estimated half-way through the round trip: off by up to that much.
            margin = max(fit.margin, owd)
            if arrive < start + margin:
                t = start + margin - owd
            elif arrive > start + fit.window - margin or self._held(arrive) >= room:
                t = start + fit.window + margin - owd
            else:
                return t
        return t

    def describe(self) -> str:
        """What was learned, in words (as ``-v`` logs it)."""
        if self.fit is not None and self.limit is not None:
            return (
                f"{self.limit} per {self.fit.window:.2f}s, {self.fit.kind} window "
                "(learned from 429s)"
            )
        if self.cubic.rate is not None:
            kind = "sliding window, " if self.kind == "sliding" else ""
            return f"{kind}adaptive {self.cubic.rate:.2f}/s (learned from 429s)"
        return "429s seen, no quota inferred yet"


def _same(fit: Fit, old: Fit) -> bool:
    """Whether a new reading ``fit`` is the fixed window ``old``, more closely read."""
    return fit.kind == "fixed" and abs(fit.window - old.window) <= old.margin


def _densest(sends: list[float], until: float) -> float:
    """Requests per second from any of ``sends`` until ``until``: the most of those rates (an
    idle stretch before the requests that met a refusal does not water it down)."""
    n = len(sends)
    return max((n - i) / max(until - t, 1e-3) for i, t in enumerate(sorted(sends)))
