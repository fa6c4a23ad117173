"""What an answer's status and headers mean: the error it maps to, and how long to wait.

``raise_for_status`` maps an error status to ``harvester.errors`` (``http.py`` re-exports it with
``retry_after`` and ``problem_text``); they read only a response's status and headers and a
request's label, so any object with those serves (``Answered``, ``Labelled``).
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Mapping
from typing import Protocol

import orjson

from harvester.errors import ClientError, RateLimited, ServerError, Unauthorized

__all__ = ["Answered", "Labelled", "problem_text", "raise_for_status", "retry_after"]


class Answered(Protocol):
    """A response as far as its status means anything: its status and headers."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


class Labelled(Protocol):
    """A request as errors name it."""

    @property
    def label(self) -> str: ...


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def retry_after(value: str | None, now: float, date: str | None = None) -> float | None:
    """A ``Retry-After`` header as seconds to wait (delay seconds or an HTTP date), or None when
    absent or unreadable. An HTTP date is read against the answer's own ``Date`` (``date``, the
    server's clock) when it has a readable one, else against ``now``: a server whose clock runs a
    day ahead of ours means a short wait, not a day's."""
    if date:
        with contextlib.suppress(TypeError, ValueError):
            now = email.utils.parsedate_to_datetime(date).timestamp()
    return _retry_after(value, now)


def problem_text(body: bytes) -> str:
    """What an error body says: a JSON (problem+json) body's ``title``, ``message`` or
    ``detail`` (title and detail when both, as RFC 9457 writes them), else its first 200
    characters as text ("" for no body)."""
    if not body:
        return ""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip()
    if not isinstance(data, dict):
        return ""
    head = str(data.get("title") or data.get("message") or "")
    detail = str(data.get("detail") or "")
    return f"{head} ({detail})" if head and detail and detail != head else head or detail


def raise_for_status(response: Answered, request: Labelled, body: bytes = b"") -> None:
    """Map an error status to the error tree (2xx, 204 included, passes)."""
    status = response.status
    if status < 400:
        return
    detail = ""
    if body:
        try:
            data = orjson.loads(body)
            if isinstance(data, dict):
                detail = str(data.get("title") or data.get("message") or data.get("detail") or "")
        except orjson.JSONDecodeError:
            detail = body[:200].decode("utf-8", "replace").strip()
    message = f"HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        after = _retry_after(response.headers.get("Retry-After"), time.time())
        raise RateLimited(message, request=request.label, retry_after=after)
    if status == 401:
        raise Unauthorized(message, status=status, request=request.label)
    if status >= 500:
        raise ServerError(message, status=status, request=request.label)
    raise ClientError(message, status=status, request=request.label)
