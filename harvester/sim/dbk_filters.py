"""The simulated DBK export's filters: updatedFrom, updatedTo, publisher and productIds.

``export_filters`` reads them from the query and a JSON body (the body's win) and answers
``BadRequest`` (a 400) for a value the export rejects. Times may be ISO 8601 basic
(``20250204T0930-0400``, ``20250204T093000Z``, ``20250204``) or extended
(``2025-02-04T09:30:00+00:00``), no zone meaning UTC (``parse_time``); with ``strict`` (the
``dbk_basic_time_only`` reading) only the docs' own form is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

import orjson

__all__ = ["BadRequest", "Filters", "export_filters", "parse_time"]

Filters = tuple[int | None, int | None, int | None, list[str] | None]
_TIME = re.compile(
    r"^(\d{4})-?(\d{2})-?(\d{2})(?:T(\d{2}):?(\d{2})(?::?(\d{2}))?(?:\.\d+)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?$"
)
#: The docs' own form: ISO 8601 basic with a numeric offset (``20250204T0930-0400``), seconds
#: optional (``readings.dbk_basic_time_only`` accepts this alone).
_DOCS_TIME = re.compile(r"^\d{8}T\d{4}(\d{2})?[+-]\d{4}$")


class BadRequest(Exception):
    """A filter value the export rejects with 400."""


def parse_time(text: str) -> int:
    """An ISO 8601 basic or extended date/time as UNIX seconds (UTC when no zone is given)."""
    m = _TIME.match(text.strip())
    if not m:
        raise BadRequest(f"not an ISO 8601 date/time: {text!r}")
    year, month, day, hour, minute, second, zone = m.groups()
    tz = UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        when = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise BadRequest(f"not a valid date/time: {text!r}") from exc
    return int(when.timestamp())


def _time(value: object, strict: bool) -> int | None:
    """A filter's time (None when not given); ``strict``: only the docs' own form."""
    if not value:
        return None
    text = str(value)
    if strict and not _DOCS_TIME.match(text.strip()):
        raise BadRequest(f"not a date/time as 20250204T0930-0400: {text!r}")
    return parse_time(text)


def export_filters(query: Mapping[str, str], raw: bytes, *, strict: bool) -> Filters:
    """(start, end, publisher, ISBNs) of one export request; ``BadRequest`` for a bad value."""
    values: dict[str, object] = dict(query)
    if raw.strip():
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest("the body must be a JSON object") from exc
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        values.update(body)
    start = _time(values.get("updatedFrom"), strict)
    end = _time(values.get("updatedTo"), strict)
    publisher = None
    if values.get("publisher") not in (None, ""):
        try:
            publisher = int(str(values["publisher"]))
        except ValueError as exc:
            raise BadRequest("publisher must be a DBK customer number") from exc
    isbns = None
    ids = values.get("productIds")
    if ids not in (None, "", []):
        items = ids if isinstance(ids, list) else str(ids).split(",")
        isbns = [str(i).strip() for i in items if str(i).strip()]
        if not all(re.fullmatch(r"\d{13}", i) for i in isbns):
            raise BadRequest("productIds must be 13-digit EAN numbers")
    return start, end, publisher, isbns
