"""A quota the server never announces, learned from its 429s: pure, no I/O, no clock.

``HiddenQuota`` follows one API whose answers carry no rate-limit headers. Until its first
refusal it paces nothing (``next_allowed`` is ``now``). Each 429 is ``refused_at`` with its
request's sequence number and, where it came with ``Retry-After``, the bounds of the window end
it names (``ratephase.py``, which narrows them with every refusal naming the same end, every
refused request's departure and the first request allowed after a refusal). From then on:

- **a refusal closes the API** until that end's upper bound; where the end comes from a
  whole-second ``Retry-After`` (as likely early as late in its bounds), only until their middle,
  where one request finds out which (refused, it narrows them: the next goes at the middle of
  what is left). Without ``Retry-After``, for a backoff from 1 s doubling with each refusal in a
  row, jittered down by up to half (``rateadaptive.py``: shorter once the adaptive rate runs).
  A refusal of a request already on its way when the API closed narrows that end, nothing
  more. Under a read window the API reopens as soon as the window has room again, but never
  before the end's lower bound;
- **the window is read off the refusals** (``ratefit.py``): a fixed one from ends that share
  a phase; once the ends fit no fixed window, a sliding one from ends that are each the
  ``limit``-th latest request allowed plus the window. Once one fits, the pace
  (``ratepace.py``) lets ``limit`` requests arrive in each fixed window, none near its edges,
  or at most ``limit`` in any sliding window. A fixed window read before stays while the
  latest ends fall on its edges (a new reading replaces it only when it is the same window
  more closely read);
- **until then an adaptive rate** (``rateadaptive.py``: cut on a refusal, regrowing along a
  cubic curve, requests evenly spaced); ends that fit no fixed window mark the kind
  ``sliding``;
- **changes both ways**: a refusal under a fitted window sets ``limit`` to what that window
  held: down at once, the fixed window keeping its length and phase and the windows before
  (which allowed more) left out of later readings. A refusal naming an end that is not that
  window's shows the phase off: the window is read again; so does a limit lowered in two
  windows in a row (the adaptive rate until one is read). Every ``PROBE_EVERY`` windows one
  request more is let through, and each such probe the server allows raises ``limit``
  (doubling the step while they pass, probing again at once).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from harvester.engine.rateadaptive import AdaptiveRate
from harvester.engine.ratearrivals import NEVER, Arrivals, Req
from harvester.engine.ratefit import NO_FIT, Fit, fit_fixed, fit_sliding, fixed_limit, holds
from harvester.engine.ratepace import earliest, held, index
from harvester.engine.ratephase import Bounds, WindowEnds

__all__ = ["PROBE_EVERY", "HiddenQuota"]

#: Under a fitted window, one request more is let through once in this many windows.
PROBE_EVERY = 8


class HiddenQuota:
    """What one API's refusals show of its quota, and the pace that follows (module docstring)."""

    def __init__(self, rand: Callable[[], float] | None = None) -> None:
        self._rand = rand or random.random
        self.active = False  # a refusal was seen
        self.blocked_until = NEVER
        self.fit: Fit | None = None  # the window read off the refusals, once one fits
        self.limit: int | None = None
        self.kind: str | None = None  # "fixed" or "sliding" once seen, else None
        self.adaptive = AdaptiveRate()  # the pace until a window is read
        self._closed_at = -1e18  # when the last refusal that counted closed the API
        self._strikes = 0
        self.ends = WindowEnds()  # the window ends the refusals named
        self.arrivals = Arrivals()  # our requests, as the server saw them
        self._probe_at = NEVER  # when the next probe may go
        self._probe: int | None = None  # the probe in flight (sequence number)
        self._step = 1
        self._lowered: int | None = None  # the fitted window the limit was last lowered in

    @property
    def window(self) -> float | None:
        return self.fit.window if self.fit else None

    @property
    def rate(self) -> float | None:
        return self.adaptive.rate

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
            self.adaptive.until = max(self.adaptive.until, end[1])
        self._refused(seq, req, now, end, hold)
        if end is not None:
            self.blocked_until = max(self.blocked_until, self._reopen(end, rounded))

    def _reopen(self, end: Bounds, rounded: bool) -> float:
        """When the API reopens after a refusal naming ``end`` (bounds, as narrowed): at the
        latest, the end's upper bound; with no window read, at the middle of a ``rounded`` end's
        bounds; under a read window, as soon as it has room again (a whole-second Retry-After
        rounds up by up to a second; the fitted edges do not), but never before the end's lower
        bound (the server's stated time less its rounding)."""
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
            wait = min(60.0, self.adaptive.first_wait() * 2.0 ** (self._strikes - 1))
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
        if sends := self.arrivals.allowed_sends():
            self.adaptive.cut(now, sends, self.ends.longest, self.blocked_until)

    def _recut(self, now: float) -> None:
        """A request allowed at ``now`` after a refusal: the first cut again if that shows the
        end it counted to earlier (while no window is read)."""
        if self.fit is None:
            self.adaptive.passed(now, self.arrivals.allowed_sends())

    def _names_fitted_end(self, end: Bounds | None, arrival: float) -> bool:
        """Whether a refusal's named ``end`` (None: unknown) may be the end of the fitted fixed
        window its ``arrival`` falls in (a sliding fit: always)."""
        fit = self.fit
        if end is None or fit is None or fit.kind != "fixed":
            return True
        edge = fit.end + (self._index(arrival) + 1) * fit.window
        return end[0] - fit.margin <= edge <= end[1] + fit.margin

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
        return index(self.fit, t)

    def _held(self, arrive: float, *, narrow: bool = False) -> int:
        """Our requests the fitted window holds as one arriving at ``arrive`` arrives
        (``ratepace.held``)."""
        assert self.fit is not None
        return held(self.fit, self.arrivals.latest()[0], arrive, narrow=narrow)

    def next_allowed(self, now: float, last_send: float | None) -> float:
        """When the next request may leave (>= now)."""
        t = max(now, self.blocked_until)
        if not self.active:
            return t
        if self.fit is not None and self.limit is not None:
            return self._windowed(t)
        if self.adaptive.rate is not None and last_send is not None:
            t = max(t, last_send + self.adaptive.gap(t))
        return t

    def _windowed(self, t: float, *, probe: bool = True) -> float:
        """The earliest time from ``t`` whose request the fitted window has room for (one more
        when a probe is due and ``probe``; ``ratepace.earliest``)."""
        assert self.fit is not None and self.limit is not None
        due = probe and self._probe is None and t >= self._probe_at
        room = self.limit + (1 if due else 0)
        owd = (self.arrivals.rtt or 0.0) / 2
        return earliest(self.fit, room, self.arrivals.latest()[0], t, owd)

    def describe(self) -> str:
        """What was learned, in words (as ``-v`` logs it)."""
        if self.fit is not None and self.limit is not None:
            return (
                f"{self.limit} per {self.fit.window:.2f}s, {self.fit.kind} window "
                "(learned from 429s)"
            )
        if self.adaptive.rate is not None:
            kind = "sliding window, " if self.kind == "sliding" else ""
            return f"{kind}adaptive {self.adaptive.rate:.2f}/s (learned from 429s)"
        return "429s seen, no quota inferred yet"


def _same(fit: Fit, old: Fit) -> bool:
    """Whether a new reading ``fit`` is the fixed window ``old``, more closely read."""
    return fit.kind == "fixed" and abs(fit.window - old.window) <= old.margin
