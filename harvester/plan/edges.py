"""How each API reads the ends of a range it is asked for: pure rules, no I/O.

Neither API defines its ends (open-points.md). DBK's ``updatedFrom`` gets data "updated after"
a time and ``updatedTo`` "before" one: each end may be inclusive or exclusive. NOBB's ``from`` /
``to`` days likewise. The harvester plans in its own terms (DBK windows ``[start, end)`` of whole
seconds, NOBB partitions of whole days ``[first, last]``) and these rules turn a planned range
into request parameters that hold exactly that range under the reading known so far, and at
least that range while an end is not known. A repeat is harmless: the sink's key set keeps the
first copy of a record and drops the rest; a gap would be a silent loss.

``SecondEdges`` (DBK) learns from the responses. Until a product stamped exactly ``updatedFrom``
has come back, ``updatedFrom`` is sent one second early (``start - 1``): exact when the server
reads it as exclusive, one extra second (the previous window's last, dropped as repeats) when
inclusive. Once a product at ``updatedFrom`` is seen, the end is inclusive and ``start`` is sent.
``updatedTo`` is sent as ``end`` (exact when exclusive) until a product stamped exactly
``updatedTo`` comes back, then as ``end - 1``. A datestamp on a whole minute is no proof until
the server has shown it writes seconds (it may be a stamp without them), and proofs only ever
make the request exact, never narrower than the range. Under the default reading the first
responses prove ``updatedFrom`` inclusive, so the overlap costs a few products in the first
windows of a run, not a second per window.

``DayEdges`` (NOBB) learns from the items' change dates. Partitions are planned as whole days
``..x`` / ``x+1..`` (exact when both ends are inclusive); an item changed on a partition's ``from``
(``to``) day that comes back proves that end inclusive. When a dump's walks have not proven both,
each boundary is walked again as ``from = x-1``, ``to = x+2``, which holds days ``x`` and ``x+1``
under every reading (the days a gap can be), and the repeats are dropped. An open-ended range
(the catch-up, a sync) asks ``from`` a day early until ``from`` is proven inclusive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

__all__ = ["DayEdges", "SecondEdges"]


@dataclass(slots=True)
class SecondEdges:
    """The DBK reading of ``updatedFrom`` / ``updatedTo``: ``None`` until proven (see above).

    ``fixed`` takes the given reading as known and learns nothing (a benchmark's baseline).
    """

    from_inclusive: bool | None = None
    to_inclusive: bool | None = None
    fixed: bool = False
    seconds: bool = False  #: some datestamp had seconds (see ``observe``)

    def bounds(self, start: int, end: int) -> tuple[int, int]:
        """``(updatedFrom, updatedTo)`` in UNIX seconds for the window ``[start, end)``."""
        lo = start if self.from_inclusive else start - 1
        hi = end - 1 if self.to_inclusive else end
        return lo, hi

    def observe(self, sent: tuple[int, int], times: Iterable[int], *, seconds: bool) -> bool:
        """Learn from datestamps of a response to ``sent``; True if the reading changed.

        ``seconds``: the response had a stamp off the whole minute, so the server writes
        seconds, and a stamp on a whole minute is then that very second.
        """
        self.seconds = self.seconds or seconds
        if self.fixed or (self.from_inclusive and self.to_inclusive):
            return False
        lo, hi = sent
        changed = False
        for t in times:
            if t % 60 == 0 and not self.seconds:
                continue  # a stamp without seconds proves nothing about one second
            if t == lo and not self.from_inclusive:
                self.from_inclusive = changed = True
            elif t == hi and not self.to_inclusive:
                self.to_inclusive = changed = True
        return changed

    def describe(self) -> dict[str, str]:
        """The reading for the manifest's checks."""
        return {
            "updatedFrom": _say(self.from_inclusive, self.fixed, "sent one second early"),
            "updatedTo": _say(self.to_inclusive, self.fixed, "sent as the window's end"),
        }


@dataclass(slots=True)
class DayEdges:
    """The NOBB reading of ``from`` / ``to`` days: ``None`` until an item proves it inclusive.

    ``fixed`` takes the given reading as known and learns nothing (a benchmark's baseline).
    """

    from_inclusive: bool | None = None
    to_inclusive: bool | None = None
    fixed: bool = False
    fills: int = 0  #: boundary fills walked (see ``NobbSource``)

    def observe(self, date_from: str | None, date_to: str | None, modified: str) -> None:
        """An item changed on ``modified`` came back for a walk of ``date_from..date_to``."""
        if self.fixed:
            return
        day = modified[:10]
        if day == date_from:
            self.from_inclusive = True
        if day == date_to:
            self.to_inclusive = True

    def observe_all(
        self, date_from: str | None, date_to: str | None, modified: Iterable[str | None]
    ) -> None:
        """``observe`` for each of ``modified`` (a page's items; None: no change date)."""
        if self.fixed:
            return
        want_from = date_from is not None and not self.from_inclusive
        want_to = date_to is not None and not self.to_inclusive
        if not (want_from or want_to):
            return  # nothing left to learn from this range: skip the items
        for when in modified:
            if when:
                self.observe(date_from, date_to, when)

    @property
    def tiles(self) -> bool:
        """Partitions ``..x`` and ``x+1..`` hold every day between them: both ends inclusive."""
        return bool(self.from_inclusive and self.to_inclusive)

    def since(self, day: date) -> date:
        """The ``from`` day that holds ``day`` under the reading known (a day early if unknown)."""
        return day if self.from_inclusive else day - timedelta(days=1)

    def describe(self) -> dict[str, object]:
        """The reading for the manifest's checks."""
        return {
            "from": _say(self.from_inclusive, self.fixed, "open ranges sent a day early"),
            "to": _say(self.to_inclusive, self.fixed, "each boundary walked again"),
            "boundary_fills": self.fills,
        }


def _say(inclusive: bool | None, fixed: bool, otherwise: str) -> str:
    if inclusive is None:
        return f"not measured: {otherwise}, exact under either reading"
    how = "assumed" if fixed else "measured"
    return f"{'inclusive' if inclusive else 'exclusive'} ({how})"
