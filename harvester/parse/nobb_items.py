"""NOBB items as the page splitter (``nobb.py``, which re-exports ``Items`` and ``NobbItem``)
hands them out.

``Items`` holds a chunk's items as three parallel lists (keys, JSON lines, change dates);
iterating gives ``NobbItem`` values. The splitter may instead hand the lines over as one
``block``: the items as NDJSON (each followed by a newline) in one buffer, with ``ends``, the
offset after each item's newline; ``lines`` then cuts them out only when asked. ``head``
reads an item's key and change date (a ``Head``) from its first bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import msgspec

__all__ = ["Head", "Items", "NobbItem", "Status", "head"]


class NobbItem(NamedTuple):
    """One item: its key, its JSON line (no newline), and its last-modified time if present."""

    key: int
    line: bytes
    modified: str | None


class Items:
    """Items in the order served, as three parallel lists (a chunk's worth, handled as one).

    Iterating gives ``NobbItem`` values; ``keys``, ``lines`` and ``modified`` are the columns.
    """

    __slots__ = ("_lines", "block", "ends", "keys", "modified")

    def __init__(
        self,
        keys: list[int] | None = None,
        lines: list[bytes] | None = None,
        modified: list[str | None] | None = None,
        *,
        block: bytearray | memoryview | None = None,
        ends: list[int] | None = None,
    ) -> None:
        self.keys = keys if keys is not None else []
        self._lines = lines if lines is not None or block is not None else []
        self.modified = modified if modified is not None else []
        #: The items as NDJSON in one buffer (or None: ``lines`` only), and where each ends.
        self.block = block
        self.ends = ends if ends is not None else []

    @property
    def lines(self) -> list[bytes]:
        """Each item's JSON (no newline), cut out of ``block`` on first use."""
        if self._lines is None:
            block, ends = self.block, self.ends
            assert block is not None
            starts = [0, *ends[:-1]]
            self._lines = [bytes(block[a : b - 1]) for a, b in zip(starts, ends, strict=True)]
        return self._lines

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[NobbItem]:
        return map(NobbItem, self.keys, self.lines, self.modified)

    def extend(self, more: Items) -> None:
        """Append ``more`` (the result holds lines, no block)."""
        lines = self.lines + more.lines
        self.keys += more.keys
        self._lines, self.block, self.ends = lines, None, []
        self.modified += more.modified


class Status(msgspec.Struct, gc=False):
    """An item's ``status`` object, as far as the harvester reads it."""

    lastModifiedDate: str | None = None


class Head(msgspec.Struct, gc=False):
    """An item's key and ``status`` (untracked by the cyclic GC: they hold no containers)."""

    nobbNumber: int | str | None = None
    status: Status | None = None


_HEAD = msgspec.json.Decoder(Head)
_STATUS_KEY = b'"status":'


def head(line: bytes | bytearray, start: int = 0, stop: int | None = None) -> Head:
    """An item's ``nobbNumber`` and ``status``, decoding the item only up to its status object.

    ``line[start:stop]`` is one complete, valid JSON object (a top-level element msgspec
    already delimited). ``"status":`` whose quote is not escaped is a key token (inside a string
    every ``"`` byte follows a backslash), at some depth. The item cut after the first ``}``
    that follows it, plus one ``}``, is valid JSON exactly when that key is at the top level,
    its value an object without nested objects, and the cut outside any string: any other cut
    leaves a string or a container open. Only then is the short prefix decoded (its fields are
    the item's: JSON tokenises a prefix as it does the whole); else, or when ``nobbNumber``
    comes later, the whole item is. The API puts ``status`` before the large ``suppliers`` and
    ``properties``.
    """
    stop = len(line) if stop is None else stop
    at = line.find(_STATUS_KEY, start, stop)
    if at > start and line[at - 1] != 0x5C:  # 0x5C: a backslash (an escaped quote: not a key)
        end = line.find(b"}", at, stop)
        if end > 0:
            try:
                found = _HEAD.decode(b"".join((memoryview(line)[start : end + 1], b"}")))
            except msgspec.DecodeError:
                pass
            else:
                if found.nobbNumber is not None:
                    return found
    return _HEAD.decode(memoryview(line)[start:stop])
