"""An adaptive request rate for a quota nobody announces: pure, no I/O, no clock.

The AWS SDKs' "adaptive" retry mode (botocore ``retries/adaptive.py`` and ``throttling.py``),
as ``rateadaptive.py`` uses it where the refusals do not show the window: on a refusal the rate
is cut to ``BETA`` of the lesser of the curve's rate and what the server allowed lately (what
that counts from: ``rateadaptive.py``), then it regrows along a cubic curve
back to the rate refused in ``k`` seconds and on beyond it, which probes upward. The caller
spaces requests evenly at the rate: at most ``rate * W + 1`` in any ``W`` seconds, so a rate
below the quota's never draws a refusal from a fixed or a sliding window.

>>> c = CubicRate()
>>> c.cut(now=10.0, allowed_rate=10.0, k=4.0)
>>> round(c.at(10.0), 2), round(c.at(14.0), 2), c.at(18.0) > 10.0
(9.0, 10.0, True)
"""

from __future__ import annotations

__all__ = ["BETA", "MIN_RATE", "CubicRate"]

#: The cut on a refusal (botocore cuts to 0.7; a shallower cut loses less of a quota it had
#: nearly right, and the rate it cuts from is already no more than what the server allowed
#: lately, so a quota that fell is still followed at once).
BETA = 0.9
#: Requests per second the rate never goes below.
MIN_RATE = 0.02


class CubicRate:
    """The adaptive rate (module docstring); None until the first ``cut``."""

    __slots__ = ("_k", "_last_fail", "_w_max", "rate")

    def __init__(self) -> None:
        self.rate: float | None = None  # right after the last cut
        self._w_max = 0.0
        self._k = 1.0
        self._last_fail = 0.0

    def cut(self, *, now: float, allowed_rate: float, k: float) -> None:
        """A refusal at ``now``; the server allowed ``allowed_rate`` per second lately; the curve
        regrows to the rate refused in ``k`` seconds (botocore: ``(w_max * (1 - BETA) / C) ** (1
        / 3)``, C = 0.4, 2 s at 10 requests/s; a slower curve draws fewer refusals)."""
        use = max(MIN_RATE, allowed_rate)
        if self.rate is not None:
            use = min(self.at(now), use)
        self._w_max = use
        self.rate = max(MIN_RATE, BETA * use)
        self._last_fail = now
        self._k = max(k, 1e-3)

    def at(self, now: float) -> float:
        """The rate at ``now`` (requests per second); a cut must have come first."""
        c = self._w_max * (1 - BETA) / self._k**3
        return max(MIN_RATE, c * (now - self._last_fail - self._k) ** 3 + self._w_max)
