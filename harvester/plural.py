"""Counts in printed text: ``1 shard``, ``2 shards``, ``1,843 records``, never ``1 shards``."""

from __future__ import annotations

__all__ = ["counted"]


def counted(n: object, noun: str, plural: str | None = None) -> str:
    """``n`` (thousands separated) and ``noun``, plural unless ``n`` is 1; ``-`` if not an int.

    >>> counted(1, "shard"), counted(2, "shard"), counted(1843, "record"), counted(1, "entry")
    ('1 shard', '2 shards', '1,843 records', '1 entry')
    >>> counted(0, "entry", "entries"), counted(None, "shard")
    ('0 entries', '- shards')
    """
    many = plural if plural is not None else noun + "s"
    if isinstance(n, bool) or not isinstance(n, int):
        return f"- {many}"
    return f"{n:,} {noun if n == 1 else many}"
