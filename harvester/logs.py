"""Logging setup for the CLI: human lines by default, one JSON object per line on request.

``-q`` keeps errors only (the summary line is printed regardless), ``-v`` adds request-level
detail: one line per request (source, partition, request label, status, duration), retries and
restarts. Log records carry request labels, never headers or credentials.

Structured fields ride on ``extra=``: ``source``, ``partition``, ``request``, ``status``,
``duration_ms``, ``attempt``. The JSON formatter emits those present; the text formatter shows
the message (which already names them). While the live display is on the terminal, log lines go
to it (``set_live``) and print above its rows, never through them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

import orjson

__all__ = ["FIELDS", "JsonFormatter", "log_request", "set_live", "setup_logging"]

FIELDS = ("source", "partition", "request", "status", "duration_ms", "attempt")
_live: Callable[[str], None] | None = None


def set_live(write: Callable[[str], None] | None) -> None:
    """Register (or drop, with None) where formatted log lines go while a live display is on."""
    global _live
    _live = write


def log_request(
    log: logging.Logger,
    *,
    source: str,
    partition: str | None,
    request: str,
    status: int,
    seconds: float,
    attempt: int | None = None,
    detail: str = "",
) -> None:
    """One request's line at INFO (``-v``), its fields on the record for the JSON formatter."""
    ms = round(seconds * 1000)
    text = f"{request}: HTTP {status or '-'}{', ' + detail if detail else ''}, {ms} ms"
    if attempt is not None:
        text += f" (attempt {attempt})"
    log.info(
        text,
        extra={
            "source": source,
            "partition": partition,
            "request": request,
            "status": status or None,
            "duration_ms": ms,
            "attempt": attempt,
        },
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        return orjson.dumps(data).decode()


class _Handler(logging.StreamHandler[TextIO]):
    def emit(self, record: logging.LogRecord) -> None:
        write = _live
        if write is None:
            super().emit(record)
            return
        try:
            write(self.format(record))
        except Exception:
            self.handleError(record)


def setup_logging(*, fmt: str = "text", quiet: bool = False, verbose: bool = False) -> None:
    """Configure the ``harvester`` loggers once, on stderr."""
    handler = _Handler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("harvester")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING)
