"""A NOBB request read: its parameters checked (``BadRequest``: a 400) and its page tokens.

``read_query`` turns the query string (and a POST body of NOBB numbers) into a ``NobbQuery``:
the filters as ``NobbApi`` caches orderings by them, the page size after the clamp reading, the
sort and the raw ``pageToken``. ``encode_token`` / ``decode_token`` are the keyset cursors
``sim/nobb.py`` describes; ``ticks`` / ``unix`` convert their .NET ticks.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import orjson

from harvester.sim.settings import SimSettings

__all__ = [
    "MAX_PAGE",
    "SORT_FIELDS",
    "BadRequest",
    "NobbQuery",
    "decode_token",
    "encode_token",
    "read_query",
    "ticks",
    "unix",
]

MAX_PAGE = 10_000
SORT_FIELDS = ("NobbNo", "OwnerParticipantNo", "Created")
_TICKS_AT_EPOCH = 621_355_968_000_000_000
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BadRequest(Exception):
    """A parameter the API would answer 400 for."""


@dataclass(frozen=True, slots=True)
class NobbQuery:
    """One request's parameters: ``filters`` is (day_from, day_to, nobbnos, suppliers)."""

    filters: tuple[object, ...]
    size: int
    sort_field: str
    order: str
    token: str


def ticks(unix_seconds: float) -> int:
    """.NET ticks of a UNIX time."""
    return _TICKS_AT_EPOCH + int(unix_seconds * 10_000_000)


def unix(net_ticks: int) -> float:
    """The UNIX time of .NET ticks."""
    return (net_ticks - _TICKS_AT_EPOCH) / 10_000_000


def encode_token(direction: str, page: int, sort_value: int, nobb: int, ticks: int) -> str:
    """A page token: base64 of ``direction|page|sort_value|nobb|ticks``."""
    raw = f"{direction}|{page}|{sort_value}|{nobb}|{ticks}".encode()
    return base64.b64encode(raw).decode()


def decode_token(token: str) -> tuple[str, int, int, int, int]:
    """The fields of ``encode_token``'s token (``BadRequest`` for anything else)."""
    try:
        direction, page, sort_value, nobb, ticks = (
            base64.b64decode(token, validate=True).decode().split("|")
        )
        if direction not in ("F", "B"):
            raise ValueError(direction)
        return direction, int(page), int(sort_value), int(nobb), int(ticks)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("pageToken is not a valid token") from exc


def read_query(q: Mapping[str, str], method: str, body: bytes, settings: SimSettings) -> NobbQuery:
    """The request's parameters, checked in the order the API reports them (``BadRequest``)."""
    nobbnos = _int_list(q["nobbnos"], "nobbnos") if "nobbnos" in q else None
    if method == "POST" and body.strip():
        nobbnos = [*(nobbnos or []), *_body_numbers(body)]
    size = _page_size(q, settings.readings.nobb_page_clamp)
    sort_field = q.get("sortField", "NobbNo")
    if sort_field not in SORT_FIELDS:
        raise BadRequest(f"sortField must be one of {', '.join(SORT_FIELDS)}")
    order = q.get("sortOrder", "asc").lower()
    if order not in ("asc", "desc"):
        raise BadRequest("sortOrder must be asc or desc")
    day_from = _day(q["from"], "from") if "from" in q else None
    day_to = _day(q["to"], "to") if "to" in q else None
    # The other readings of ``from`` / ``to`` (open-points.md), on whole days.
    if day_from is not None and settings.nobb_from_exclusive:
        day_from += 1
    if day_to is not None and settings.nobb_to_exclusive:
        day_to -= 1
    filters = (
        day_from,
        day_to,
        tuple(sorted(nobbnos)) if nobbnos is not None else None,
        tuple(_int_list(q["suppliers"], "suppliers")) if "suppliers" in q else None,
    )
    return NobbQuery(filters, size, sort_field, order, q.get("pageToken", ""))


def _body_numbers(body: bytes) -> list[int]:
    """A POST body's NOBB numbers: a JSON array, or ``{"nobbNos": [...]}``."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("the body must be a JSON array of NOBB numbers") from exc
    if isinstance(parsed, dict):
        parsed = parsed.get("nobbNos")
    if not isinstance(parsed, list) or not all(
        isinstance(x, int) or (isinstance(x, str) and x.isdigit()) for x in parsed
    ):
        raise BadRequest("the body must be a JSON array of NOBB numbers")
    return [int(x) for x in parsed]


def _page_size(q: Mapping[str, str], clamp: int) -> int:
    """``pageSize`` (default 1000), silently cut to ``clamp`` under that reading."""
    try:
        size = int(q.get("pageSize", "1000"))
    except ValueError as exc:
        raise BadRequest("pageSize must be an integer") from exc
    if clamp and size > clamp:
        return clamp  # silently: the answer says nothing of it
    if not 1 <= size <= MAX_PAGE:
        raise BadRequest(f"pageSize must be between 1 and {MAX_PAGE}")
    return size


def _day(text: str, name: str) -> int:
    if not _DATE.match(text):
        raise BadRequest(f"{name} must be a date as yyyy-mm-dd")
    try:
        return (date.fromisoformat(text) - date(1970, 1, 1)).days
    except ValueError as exc:
        raise BadRequest(f"{name} is not a valid date") from exc


def _int_list(text: str, name: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise BadRequest(f"{name} must be a comma-separated list of numbers") from exc
