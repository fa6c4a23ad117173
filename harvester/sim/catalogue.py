"""The simulated NOBB catalogue: deterministic per seed, compact in memory, items made on demand.

Only what filtering and sorting need is kept, in ``array`` columns indexed by item position
(positions are in ascending ``nobbNumber`` order): the number, the last-modified and created days,
and the main supplier. An item's JSON is rendered from (seed, position) when a page asks for it,
into one of the pre-rendered shapes of ``items.py``, so a catalogue of 1,000,000 items costs
~20 MB and starts in about a second.
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from harvester.sim.items import TEMPLATES, extra_suppliers, item_name, template_parts
from harvester.sim.settings import DEFAULT_NOW

__all__ = ["SPAN_DAYS", "NobbCatalogue"]

#: Change dates spread over this many days up to ``now``'s day (2005-01-01..2026-11-20 by default).
SPAN_DAYS = (date(2026, 11, 20) - date(2005, 1, 1)).days
_EPOCH = date(1970, 1, 1)
#: Rendered items kept, in bytes: a page asked again (by another walk, a retry or the next run)
#: costs a copy, not a render, so concurrent walks do not queue behind the renders. Past it,
#: items render on demand.
RENDER_CACHE_BYTES = 256 * 1024 * 1024


def _day(d: date) -> int:
    return (d - _EPOCH).days


class NobbCatalogue:
    """``size`` items: ``keys``, ``modified`` and ``created`` (days since 1970), ``owner``.

    A function of ``size``, ``seed`` and ``now`` (UTC) alone: items change on days up to and
    including ``now``'s day, never later; another ``now`` shifts every date by the same days.
    """

    def __init__(self, size: int, seed: int, *, now: datetime = DEFAULT_NOW) -> None:
        self.size = size
        self.seed = seed
        rng = random.Random(seed)
        stride = max(1, 89_999_999 // max(1, size))
        self.keys = array(
            "i", (10_000_000 + i * stride + rng.randrange(stride) for i in range(size))
        )
        last = _day(now.astimezone(UTC).date())
        span = SPAN_DAYS
        # Skewed towards recent days: many items change often, old days are sparse.
        self.modified = array("i", (last - int(span * rng.random() ** 2.5) for _ in range(size)))
        self.created = array("i", (m - rng.randrange(0, 2000) for m in self.modified))
        self.owner = array("i", (100_000 + rng.randrange(700) * 37 for _ in range(size)))
        self._templates: dict[int, list[bytes]] = {}
        self._rendered: dict[int, bytes] = {}  # position -> its JSON, up to RENDER_CACHE_BYTES
        self._cached = 0  # bytes in ``_rendered``
        #: Positions of items removed without a change: no request finds them any more.
        self.vanished: set[int] = set()

    def position(self, nobb: int) -> int | None:
        """Position of an item by its number, or None."""
        pos = bisect.bisect_left(self.keys, nobb)
        return pos if pos < self.size and self.keys[pos] == nobb else None

    def touch(self, nobb: int, day: date) -> None:
        """Change an item's last-modified day (for tests of items changing during a dump)."""
        pos = self.position(nobb)
        if pos is None:
            raise KeyError(nobb)
        self.modified[pos] = _day(day)
        self._cached -= len(self._rendered.pop(pos, b""))

    def vanish(self, nobb: int) -> None:
        """Remove an item without changing its date (no feed of deletions: it just vanishes)."""
        pos = self.position(nobb)
        if pos is None:
            raise KeyError(nobb)
        self.vanished.add(pos)

    def matching(
        self,
        *,
        day_from: int | None,
        day_to: int | None,
        nobbnos: Sequence[int] | None,
        suppliers: Sequence[int] | None,
    ) -> list[int]:
        """Positions of the items that pass every filter, in ascending nobbNumber order."""
        if nobbnos is not None:
            cand: Sequence[int] = sorted(
                p for p in (self.position(n) for n in set(nobbnos)) if p is not None
            )
        else:
            cand = range(self.size)
        mod = self.modified
        lo = day_from if day_from is not None else -(10**9)
        hi = day_to if day_to is not None else 10**9
        out = [p for p in cand if lo <= mod[p] <= hi]
        if self.vanished:
            out = [p for p in out if p not in self.vanished]
        if suppliers is not None:
            wanted = set(suppliers)
            out = [p for p in out if wanted & set(self._supplier_numbers(p))]
        return out

    def sort_value(self, field: str, pos: int) -> int:
        """The composite sort value: the field, then nobbNumber as tie-breaker."""
        key = self.keys[pos]
        if field == "OwnerParticipantNo":
            return self.owner[pos] * 100_000_000 + key
        if field == "Created":
            return self.created[pos] * 100_000_000 + key
        return key

    def render(self, pos: int) -> bytes:
        """The item's JSON bytes (compact, as a .NET API would send them).

        Items are filled into one of ``TEMPLATES`` pre-rendered shapes (chosen by position), so a
        page renders at hundreds of MB/s; number, name, dates and supplier differ per item. The
        bytes are kept (``RENDER_CACHE_BYTES``) until the item changes (``touch``).
        """
        hit = self._rendered.get(pos)
        if hit is not None:
            return hit
        out = self._render(pos)
        if self._cached + len(out) <= RENDER_CACHE_BYTES:
            self._rendered[pos] = out
            self._cached += len(out)
        return out

    def _render(self, pos: int) -> bytes:
        t = self._template_of(pos)
        parts = self._templates.get(t)
        if parts is None:
            parts = self._templates[t] = template_parts(self.seed, t)
        key = self.keys[pos]
        name = item_name(key, pos)
        modified = (_EPOCH + timedelta(days=self.modified[pos])).isoformat() + "T12:00:00"
        created = (_EPOCH + timedelta(days=self.created[pos])).isoformat() + "T08:00:00"
        return b"".join(
            (
                parts[0],
                str(key).encode(),
                parts[1],
                name.encode(),
                parts[2],
                created.encode(),
                parts[3],
                created.encode(),
                parts[4],
                modified.encode(),
                parts[5],
                str(self.owner[pos]).encode(),
                parts[6],
            )
        )

    def _template_of(self, pos: int) -> int:
        return (pos * 2_654_435_761 + self.seed) % TEMPLATES

    def _supplier_numbers(self, pos: int) -> list[int]:
        """Every supplier's participant number; the first is the main (owner) supplier."""
        return [self.owner[pos], *extra_suppliers(self.seed, self._template_of(pos))]


def positions_after(values: Sequence[int], value: int) -> int:
    """Index of the first element of ascending ``values`` greater than ``value``."""
    return bisect.bisect_right(values, value)
