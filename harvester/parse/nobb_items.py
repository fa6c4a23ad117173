"""NOBB items as the page splitter (``nobb.py``, which re-exports both) hands them out.

``Items`` holds a chunk's items as three parallel lists (keys, JSON lines, change dates);
iterating gives ``NobbItem`` values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

__all__ = ["Items", "NobbItem"]


class NobbItem(NamedTuple):
    """One item: its key, its JSON line (no newline), and its last-modified time if present."""

    key: int
    line: bytes
    modified: str | None


class Items:
    """Items in the order served, as three parallel lists (a chunk's worth, handled as one).

    Iterating gives ``NobbItem`` values; ``keys``, ``lines`` and ``modified`` are the columns.
    """

    __slots__ = ("keys", "lines", "modified")

    def __init__(
        self,
        keys: list[int] | None = None,
        lines: list[bytes] | None = None,
        modified: list[str | None] | None = None,
    ) -> None:
        self.keys = keys if keys is not None else []
        self.lines = lines if lines is not None else []
        self.modified = modified if modified is not None else []

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[NobbItem]:
        return map(NobbItem, self.keys, self.lines, self.modified)

    def extend(self, more: Items) -> None:
        self.keys += more.keys
        self.lines += more.lines
        self.modified += more.modified
