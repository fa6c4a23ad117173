"""NOBB items as the page splitter (``nobb.py``, which re-exports both) hands them out.

``Items`` holds a chunk's items as three parallel lists (keys, JSON lines, change dates);
iterating gives ``NobbItem`` values. The splitter may instead hand the lines over as one
``block``: the items as NDJSON (each followed by a newline) in one buffer, with ``ends``, the
offset after each item's newline; ``lines`` then cuts them out only when asked.
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
