"""What a server's rate-limit headers say about its policy: pure parsing, any letter case.

``read`` turns one answer's headers into a ``Reading`` (any letter case):

- ``x-ratelimit-limit`` / ``-remaining`` / ``-reset`` (reset as a UNIX time when above 10**9,
  else as seconds from now);
- the IETF httpapi draft's ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (drafts <= 06;
  reset in seconds, a window in a ``w=`` parameter of ``RateLimit-Limit`` or of a numeric
  ``RateLimit-Policy``);
- the drafts 07-08 structured fields ``RateLimit: "name";r=50;t=30`` and
  ``RateLimit-Policy: "name";q=100;w=60``; with several policies the tightest one (the least
  remaining per second until its reset) is the one read;
- ``Date`` and ``Retry-After`` (seconds or an HTTP date).

``ratepolicy.py`` (beside this module) turns readings into a pace.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Reading", "parse_sf_list", "read", "retry_after_seconds"]

EPOCH_THRESHOLD = 1_000_000_000
_SPLIT = re.compile(r',(?=(?:[^"]*"[^"]*")*[^"]*$)')
_PARAM = re.compile(r';(?=(?:[^"]*"[^"]*")*[^"]*$)')


@dataclass(frozen=True, slots=True)
class Reading:
    """The rate-limit facts of one answer (None where the answer is silent)."""

    family: str | None = None  # "x-ratelimit", "ietf" (drafts 07-08), "ietf6" (<= 06)
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # as sent: a UNIX time (epoch) or seconds from now
    epoch: bool = False
    coarse: bool = True  # reset in whole seconds
    window: float | None = None  # stated by the server (w=)
    date: float | None = None  # the answer's Date header, UNIX seconds
    retry_after: str | None = None


def parse_sf_list(text: str) -> list[tuple[str, dict[str, str]]]:
    """An RFC 8941 list of items with parameters, read leniently: ``[(item, params)]``."""
    out: list[tuple[str, dict[str, str]]] = []
    for member in _SPLIT.split(text):
        parts = [p.strip() for p in _PARAM.split(member)]
        if not parts or not parts[0]:
            continue
        params: dict[str, str] = {}
        for p in parts[1:]:
            key, _, value = p.partition("=")
            params[key.strip().lower()] = value.strip().strip('"') or "?1"
        out.append((parts[0].strip('"'), params))
    return out


def _num(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        n = float(value.strip().split(",")[0].split(";")[0])
    except ValueError:
        return None
    return n if n >= 0 else None


def _int(value: str | None) -> int | None:
    n = _num(value)
    return None if n is None else int(n)


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def retry_after_seconds(value: str | None, server_now: float) -> float | None:
    """Retry-After as seconds from now: a number, or an HTTP date against the server's clock."""
    if not value:
        return None
    seconds = _num(value)
    if seconds is not None:
        return seconds
    when = _date(value)
    return None if when is None else max(0.0, when - server_now)


def _ietf(h: Mapping[str, str]) -> Reading | None:
    """Drafts 07-08: the tightest of the policies in ``RateLimit`` (with ``RateLimit-Policy``)."""
    policies = {name: p for name, p in parse_sf_list(h.get("ratelimit-policy", ""))}
    best: tuple[float, Reading] | None = None
    for name, p in parse_sf_list(h.get("ratelimit", "")):
        r, t = _int(p.get("r")), _num(p.get("t"))
        if r is None:
            continue
        pol = policies.get(name, {})
        reading = Reading(
            family="ietf",
            limit=_int(pol.get("q")),
            remaining=r,
            reset=t,
            coarse=p.get("t", "").isdigit(),
            window=_num(pol.get("w")),
        )
        tightness = r / max(t or 0.0, 1e-3) if r > 0 else -(t or 0.0)
        if best is None or tightness < best[0]:
            best = (tightness, reading)
    if best is not None:
        return best[1]
    if policies:  # a policy and no current state: at least the limit and window
        q = [(_int(p.get("q")), _num(p.get("w"))) for p in policies.values()]
        q = [(a, b) for a, b in q if a and b]
        if q:
            limit, window = min(q, key=lambda x: x[0] / x[1])  # type: ignore[operator]
            return Reading(family="ietf", limit=limit, window=window)
    return None


def _ietf6(h: Mapping[str, str]) -> Reading | None:
    """Drafts <= 06: RateLimit-Limit / -Remaining / -Reset (seconds), window as ``w=``."""
    if not any(k in h for k in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")):
        return None
    window = None
    for text in (h.get("ratelimit-limit", ""), h.get("ratelimit-policy", "")):
        for _, params in parse_sf_list(text):
            window = window or _num(params.get("w"))
    reset = h.get("ratelimit-reset")
    return Reading(
        family="ietf6",
        limit=_int(h.get("ratelimit-limit")),
        remaining=_int(h.get("ratelimit-remaining")),
        reset=_num(reset),
        coarse=(reset or "").strip().isdigit(),
        window=window,
    )


def _x(h: Mapping[str, str]) -> Reading | None:
    if not any(k.startswith("x-ratelimit-") for k in h):
        return None
    raw = h.get("x-ratelimit-reset")
    reset = _num(raw)
    epoch = reset is not None and reset > EPOCH_THRESHOLD
    return Reading(
        family="x-ratelimit",
        limit=_int(h.get("x-ratelimit-limit")),
        remaining=_int(h.get("x-ratelimit-remaining")),
        reset=reset,
        epoch=epoch,
        coarse=(raw or "").strip().isdigit(),
    )


def read(headers: Mapping[str, str]) -> Reading:
    """The rate-limit facts of an answer's headers; the IETF forms win over ``x-ratelimit-*``."""
    h = {k.lower(): v for k, v in headers.items()}
    new = _ietf(h) if "ratelimit" in h or "ratelimit-policy" in h else None
    found = new or _ietf6(h) or _x(h) or Reading()
    extra = {"date": _date(h.get("date")), "retry_after": h.get("retry-after")}
    return Reading(**{**{f: getattr(found, f) for f in Reading.__slots__}, **extra})
