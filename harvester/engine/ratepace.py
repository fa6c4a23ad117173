"""The pace a window read off a hidden quota's refusals allows: pure functions, no state.

Given a ``Fit`` (``ratefit.py``) with its limit, and the estimated arrivals of our requests
allowed or in flight (``ratearrivals.py``, ascending), ``held`` counts what the window holds as
a request arrives and ``earliest`` finds when the next request may leave: in a **fixed**
window, ``room`` requests arriving in each window, none within its margin (at least the
estimated one-way time, an arrival being estimated half-way through its round trip) of either
edge; in a **sliding** one, at most ``room`` in any window's length plus its margin.
"""

from __future__ import annotations

import bisect

from harvester.engine.ratefit import Fit

__all__ = ["earliest", "held", "index"]

_TRIES = 8  # windows looked ahead for room


def index(fit: Fit, t: float) -> int:
    """Which of a fixed ``fit``'s windows ``t`` falls in (0: the one ending at ``fit.end``
    plus a window)."""
    return int((t - fit.end) // fit.window)


def held(fit: Fit, allowed: list[float], arrive: float, *, narrow: bool = False) -> int:
    """Our requests (``allowed``: arrivals, allowed or in flight, ascending) the window holds
    as one arriving at ``arrive`` arrives: at most (``narrow``: at least, as far as the fit
    knows)."""
    if fit.kind == "fixed":
        start = fit.end + index(fit, arrive) * fit.window + (fit.margin if narrow else 0.0)
    else:
        start = arrive - fit.window + (fit.margin if narrow else -fit.margin)
    return bisect.bisect_right(allowed, arrive) - bisect.bisect_right(allowed, start)


def earliest(fit: Fit, room: int, allowed: list[float], t: float, owd: float) -> float:
    """The earliest time from ``t`` whose request (arriving ``owd`` later) the window has room
    for, ``room`` requests in a window (module docstring)."""
    for _ in range(_TRIES):
        arrive = t + owd
        if fit.kind == "sliding":
            inside = [a for a in allowed if a > arrive - fit.window - fit.margin]
            if len(inside) < room:
                return t
            t = inside[len(inside) - room] + fit.window + fit.margin - owd + 1e-6
            continue
        start = fit.end + index(fit, arrive) * fit.window
        margin = max(fit.margin, owd)
        if arrive < start + margin:
            t = start + margin - owd
        elif arrive > start + fit.window - margin or held(fit, allowed, arrive) >= room:
            t = start + fit.window + margin - owd
        else:
            return t
    return t
