"""The headers of a NOBB page that pagination reads: the forward token and the total hits.

The docs spell each two ways (``x-forwardToken`` and ``x-forward-token``, ``x-totalHits`` and
``x-total-hits``); ``header`` reads the first present, compared case-insensitively.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FORWARD", "TOTAL", "header"]

FORWARD = ("x-forwardtoken", "x-forward-token")
TOTAL = ("x-totalhits", "x-total-hits")


def header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` present in ``headers``, compared case-insensitively."""
    lower = {k.lower(): v for k, v in headers.items()}
    for name in names:
        value = lower.get(name)
        if value:
            return value
    return None
