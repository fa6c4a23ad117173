"""A hidden quota's window read off the fingerprints of its refusals: pure functions, no state.

A server that announces nothing still leaves traces in what it refuses, and each window kind
leaves its own (``ratelearn.py`` gathers them; all times are our monotonic seconds, a request's
arrival estimated half-way through its round trip):

- a **fixed** window's ends repeat with its length, so the ends ``Retry-After`` names fit one
  phase and one length ``W``, never shorter than any time-to-end seen; and each refusal came
  once its window had allowed as many requests as the fullest window did. ``fit_fixed``
  searches the lengths up to half as long again as the longest time-to-end (its upper bound: a
  refusal just after a window's first requests shows nearly all of it) for those that fit
  both, and the phases that do;
- a **sliding** window (a log of the last ``W`` seconds) names as its end the moment the oldest
  request it holds leaves: for the right limit ``N`` that is the ``N``-th latest request allowed
  before the refusal, plus ``W``, the same ``W`` for every refusal; and no request was allowed
  while ``N`` others had arrived in the ``W`` seconds before it. ``fit_sliding`` tries each
  ``N`` and keeps those whose bounds on ``W`` agree.

Either answers with a ``Fit`` once every reading that fits agrees to a tenth of a window, None
while they do not, and ``fit_fixed`` with ``NO_FIT`` when no fixed window explains the ends.
"""

from __future__ import annotations

import bisect
import collections
import itertools
from dataclasses import dataclass

__all__ = ["EDGE", "NO_FIT", "Fit", "fit_fixed", "fit_sliding", "fixed_limit", "holds"]

#: Seconds: two arrivals this close may have reached the server either way round.
EDGE = 0.001


@dataclass(frozen=True, slots=True)
class Fit:
    """A window read off the refusals: its kind, length (the longest that fits), the limit
    (None for a fixed one: counted by the caller on its phase), a fixed window's ``end`` (one of
    its ends, the latest that fits: windows end at ``end + k * window``) and how far the real
    edges may be from the ones assumed (``margin``)."""

    kind: str
    window: float
    margin: float
    end: float = 0.0
    limit: int | None = None


#: No fixed window explains the refusals.
NO_FIT = Fit("none", 0.0, 0.0)


def fit_fixed(
    ends: list[tuple[float, float]],
    longest: tuple[float, float],
    allowed: list[float],
    refused: list[float],
) -> Fit | None:
    """A fixed window that the distinct ``ends`` (bounds, ascending) and the arrivals of our
    ``allowed`` (ascending) and ``refused`` requests fit (module docstring). Two ends alone fit
    every length that divides their gap: it takes three."""
    if len(ends) < 3:
        return None
    floor = max(longest[0], 0.2)
    mids = [(a + b) / 2 for a, b in ends]
    gap = min(b - a for a, b in itertools.pairwise(mids))
    top = min(max(1.5 * longest[1] + 0.5, floor), gap + max(b - a for a, b in ends))
    steps = 600
    fits: list[tuple[float, float, float]] = []  # (W, phase bounds)
    for i in range(steps + 1):
        w = floor + (top - floor) * i / steps
        span = _phase(ends, w) if w > 0 else None
        if span is not None:
            fits.append((w, *span))
    if len(fits) > 40:
        fits = fits[:: len(fits) // 40 + 1]
    fits = [f for f in (_count_phase(allowed, refused, *f) for f in fits) if f]
    if not fits:
        return NO_FIT if len(ends) >= 3 else None
    last = max(mids)
    # The end after the last one seen, as each length that fits predicts it.
    nexts = [(lo + k * w, hi + k * w) for w, lo, hi in fits for k in [round((last - lo) / w) + 1]]
    lo, hi = min(a for a, _ in nexts), max(b for _, b in nexts)
    w = fits[len(fits) // 2][0]
    if hi - lo > 0.1 * w:
        return None
    return Fit("fixed", w, min(0.1 * w, max(0.02, hi - lo)), end=hi)


def holds(fit: Fit, ends: list[tuple[float, float]], windows: int = 4) -> bool:
    """Whether a fixed ``fit`` still explains the ``ends`` (bounds) named in the ``windows``
    windows up to its own ``end`` and after it: each holds one of its edges, give or take its
    margin."""
    for lo, hi in ends:
        k = round(((lo + hi) / 2 - fit.end) / fit.window)
        if k < -windows:
            continue
        edges = (fit.end + j * fit.window for j in (k - 1, k, k + 1))
        if not any(lo - fit.margin <= e <= hi + fit.margin for e in edges):
            return False
    return True


def fixed_limit(fit: Fit, allowed: list[float], refused: list[float]) -> int:
    """A fixed window's limit: the most its windows had allowed when they first refused (our
    estimated arrivals can put a refused request before an allowed one, never the server's
    count above its limit)."""
    firsts: dict[int, float] = {}
    for a in refused:
        k = int((a - fit.end) // fit.window)
        firsts[k] = min(firsts.get(k, a), a)
    counts = [
        bisect.bisect_right(allowed, a + EDGE)
        - bisect.bisect_left(allowed, fit.end + k * fit.window)
        for k, a in firsts.items()
    ]
    return max(1, *counts)


def _phase(ends: list[tuple[float, float]], w: float) -> tuple[float, float] | None:
    """Bounds on a window end (near the first) if every end fits length ``w``."""
    a0, b0 = ends[0]
    lo, hi = a0, b0
    for a, b in ends[1:]:
        k = round(((a + b) / 2 - (a0 + b0) / 2) / w)
        if k < 1:
            return None
        lo, hi = max(lo, a - k * w), min(hi, b - k * w)
        if lo > hi:
            return None
    return lo, hi


def _count_phase(
    allowed: list[float],
    refused: list[float],
    w: float,
    lo: float,
    hi: float,
) -> tuple[float, float, float] | None:
    """The part of the phase bounds ``[lo, hi]`` at which windows ``w`` long explain our
    refusals: each came once its window had allowed as many as the fullest window did (less
    one, for an arrival placed on the wrong side of an edge); None if no part does."""
    fit: list[float] = []
    steps = 16
    for i in range(steps + 1):
        end = lo + (hi - lo) * i / steps
        counts = collections.Counter(int((a - end) // w) for a in allowed)
        most = max(counts.values(), default=0)
        for a in refused:
            start = end + ((a - end) // w) * w
            before = bisect.bisect_right(allowed, a + EDGE) - bisect.bisect_left(allowed, start)
            if before < most - 1:
                break
        else:
            fit.append(end)
    if not fit:
        return None
    pad = (hi - lo) / steps
    return w, max(lo, min(fit) - pad), min(hi, max(fit) + pad)


def fit_sliding(
    refusals: list[tuple[float, float, float]], longest: tuple[float, float], allowed: list[float]
) -> Fit | None:
    """A sliding window that the ``refusals`` (arrival, bounds of the end named) and our
    ``allowed`` arrivals (ascending) fit (module docstring); None unless one limit fits. As for
    a fixed window, its length is near the longest time-to-end seen (the first refusal after
    a burst names nearly all of it)."""
    if len(refusals) < 2 or not allowed:
        return None
    found: list[tuple[int, float, float]] = []
    for n in range(1, min(len(allowed), 2000) + 1):
        w_lo, w_hi, used = longest[0], max(1.5 * longest[1] + 0.5, longest[0]), 0
        for a, lo, hi in refusals:
            i = bisect.bisect_right(allowed, a + EDGE)
            if i < n:
                continue
            oldest = allowed[i - n]
            w_lo, w_hi = max(w_lo, lo - oldest, a - oldest - EDGE), min(w_hi, hi - oldest)
            if i > n:  # the one before it had left
                w_hi = min(w_hi, a - allowed[i - n - 1] + EDGE)
            used += 1
        if used < 2 or w_lo > w_hi or not _admits(allowed, n, w_lo):
            continue
        found.append((n, w_lo, w_hi))
    if len({n for n, _, _ in found}) != 1:
        return None
    n, w_lo, w_hi = found[0]
    if w_hi - w_lo > 0.1 * w_lo:
        return None
    return Fit("sliding", w_hi, max(0.02, w_hi - w_lo), limit=n)


def _admits(allowed: list[float], n: int, w: float) -> bool:
    """Whether no request was allowed while ``n`` others had arrived in the ``w`` s before."""
    return all(k - bisect.bisect_right(allowed, a - w + EDGE) < n for k, a in enumerate(allowed))
