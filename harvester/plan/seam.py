"""Who owns which key of a partition walked from both ends: the seam between the ends.

``Seam`` is shared by a partition's ascending and descending walks (``walk.py``, whose module
docstring tells the whole method): the ascending walk claims keys above everything it has
claimed and below everything the descending walk has claimed, and the other way round; the
first key a walk meets on the other side ends that walk (``Claim.MET``) and closes the seam.
``End`` is what the seam and a planner need of a walk (``walk.Walk`` is the one kind).
"""

from __future__ import annotations

import enum
from typing import Literal, Protocol

__all__ = ["Claim", "Direction", "End", "Seam"]

Direction = Literal["asc", "desc"]


class End(Protocol):
    """One end of a partition's walk, as its seam holds it."""

    done: bool

    def will_reach(self, gap: int) -> bool:
        """True if this end's page in flight brings at least ``gap`` more keys."""
        ...


class Claim(enum.Enum):
    CLAIMED = "claimed"  # new and ours: write it
    SEEN = "seen"  # ours already (a retried or restarted page): skip it
    MET = "met"  # the other end owns it: this walk is done
    RESTART = "restart"  # page 1 came back (token expired): fetch restart() instead


class Seam:
    """Who owns which key of one partition; shared by its ascending and descending walks."""

    __slots__ = ("asc_high", "claimed", "closed", "cut", "desc_low", "ends", "total")

    def __init__(self) -> None:
        self.asc_high: int | None = None
        self.desc_low: int | None = None
        #: True once an end has met the other: each end has seen an unbroken run of keys from
        #: its side, and the runs touch, so every key of the partition is claimed.
        self.closed = False
        self.claimed = 0  # keys claimed by either end in this process
        self.total: int | None = None  # the partition's latest x-totalHits
        self.ends: dict[str, End] = {}
        #: Set when the partition is being cut into smaller ones (its walk would outlive its
        #: tokens): each end stops at its next page end; the pieces take over from the seam.
        self.cut = False

    def claim(self, direction: Direction, key: int) -> Claim:
        if direction == "asc":
            if self.desc_low is not None and key >= self.desc_low:
                self.closed = True
                return Claim.MET
            if self.asc_high is not None and key <= self.asc_high:
                return Claim.SEEN
            self.asc_high = key
        else:
            if self.asc_high is not None and key <= self.asc_high:
                self.closed = True
                return Claim.MET
            if self.desc_low is not None and key >= self.desc_low:
                return Claim.SEEN
            self.desc_low = key
        self.claimed += 1
        return Claim.CLAIMED

    def gap(self) -> int | None:
        """Keys not yet claimed by either end, by the latest x-totalHits (None if unknown)."""
        return None if self.total is None else self.total - self.claimed
