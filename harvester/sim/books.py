"""The simulated DBK catalogue: Danish books with update times, rendered as ONIX 3.1 on demand.

Kept in memory: the update time (UNIX seconds, ascending) and the publisher of each product,
in ``array`` columns; a product's ONIX is rendered from (seed, position) by string templates
(escaped, drawn in ``sim/onix_template.py``), which is far faster than any client can parse.
Update times spread over the 27 years up to ``now`` (2000–2026 for the default 2026-11-20),
denser in recent years, with a few dense minutes. With ``bulk_second`` (opt-in), a catalogue of
3,000 products or more also has one bulk-import second holding ``cap + 1`` products, more than
one response may carry, so a client meets a window it cannot split; without it no second is
made that crowded (the busy minutes spread 5 % of the products over 360 seconds).
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from harvester.sim.onix_template import product_template
from harvester.sim.settings import DEFAULT_NOW

__all__ = ["NAMESPACE", "BookCatalogue", "isbn13"]

NAMESPACE = "http://ns.editeur.org/onix/3.1/reference"
_END = int(DEFAULT_NOW.timestamp())
#: Update times spread over this many seconds up to ``now`` (2000-01-01..2026-11-20 by default).
SPAN = _END - int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
PUBLISHERS = [170864 + 13 * k for k in range(40)]
_PUBLISHER_NAMES = [
    "Gyldendal",
    "Politikens Forlag",
    "Lindhardt og Ringhof",
    "People's Press",
    "Forlaget Alvilda",
    "Rosinante & Co.",
    "Høst & Søn",
    "Jensen & Dalgaard",
]
#: Publication dates are never earlier than this many seconds before ``now`` (1990 by default).
_PUBLISHED_SPAN = _END - int(datetime(1990, 1, 1, tzinfo=UTC).timestamp())
TEMPLATES = 509
_OLD = int(datetime(2001, 1, 1, tzinfo=UTC).timestamp())  #: the one datestamp of "old"


def isbn13(n: int) -> str:
    """A valid ISBN-13 in the Danish 978-87 range for serial ``n``."""
    body = f"97887{n:07d}"
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def basic(ts: int) -> str:
    """UNIX seconds as ONIX/ISO 8601 basic UTC, e.g. ``20250204T093000Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


class BookCatalogue:
    """``size`` products in ascending update time; ``times[i]``, ``publisher[i]``.

    A function of its arguments alone: update times are never later than ``now`` (UTC, whole
    seconds), and another ``now`` shifts every time by the same number of seconds.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        *,
        cap: int = 2000,
        bulk_second: bool = False,
        now: datetime = DEFAULT_NOW,
    ) -> None:
        self.size = size
        self.seed = seed
        #: The latest possible update time: ``now`` in whole seconds (products never postdate it).
        self.end = end = int(now.timestamp())
        self._oldest_published = end - _PUBLISHED_SPAN
        rng = random.Random(seed * 31 + 7)
        span = SPAN
        times = [end - int(span * rng.random() ** 2) for _ in range(size)]
        # A few dense minutes: 5 % of products are re-stamped into 6 busy minutes.
        busy = [end - rng.randrange(span // 2) for _ in range(6)]
        for i in rng.sample(range(size), size // 20):
            times[i] = rng.choice(busy) + rng.randrange(60)
        if size >= 3000 and bulk_second:
            bulk = end - span // 3
            for i in rng.sample(range(size), cap + 1):
                times[i] = bulk
            self.bulk_second: int | None = bulk
        else:
            self.bulk_second = None
        order = sorted(range(size), key=lambda i: (times[i], i))
        self.times = array("q", (times[i] for i in order))
        #: serial of the product at each position (its ISBN and record reference derive from it)
        self.serial = array("i", order)
        self.publisher = array("i", (PUBLISHERS[s % len(PUBLISHERS)] for s in order))
        self._by_isbn = {isbn13(s): p for p, s in enumerate(order)} if size <= 1_000_000 else {}
        self._templates: dict[int, list[str]] = {}
        #: Serials deleted since the start (``delete``): served as notification 05.
        self._deleted: set[int] = set()

    def record_reference(self, pos: int) -> str:
        return f"dk.dbk.{isbn13(self.serial[pos])}"

    def window(
        self,
        start: int | None,
        end: int | None,
        *,
        publisher: int | None = None,
        isbns: Sequence[str] | None = None,
    ) -> list[int]:
        """Positions updated in ``[start, end)`` matching the filters, by update time."""
        lo = bisect.bisect_left(self.times, start) if start is not None else 0
        hi = bisect.bisect_left(self.times, end) if end is not None else self.size
        if isbns is not None:
            found = sorted(p for p in (self._by_isbn.get(i) for i in isbns) if p is not None)
            positions: Sequence[int] = [p for p in found if lo <= p < hi]
        else:
            positions = range(lo, hi)
        if publisher is not None:
            pub = self.publisher
            return [p for p in positions if pub[p] == publisher]
        return list(positions)

    def touch(self, record_reference: str, ts: int) -> None:
        """Move a product's update time (tests of products changing during a dump)."""
        pos = self._by_isbn[record_reference.removeprefix("dk.dbk.")]
        serial, pub = self.serial[pos], self.publisher[pos]
        del self.times[pos], self.serial[pos], self.publisher[pos]
        new = bisect.bisect_right(self.times, ts)
        self.times.insert(new, ts)
        self.serial.insert(new, serial)
        self.publisher.insert(new, pub)
        self._by_isbn = {isbn13(s): p for p, s in enumerate(self.serial)}

    def add(self, ts: int) -> str:
        """A new product (a serial no product had) updated at ``ts``; its record reference."""
        serial = max(self.serial) + 1
        new = bisect.bisect_right(self.times, ts)
        self.times.insert(new, ts)
        self.serial.insert(new, serial)
        self.publisher.insert(new, PUBLISHERS[serial % len(PUBLISHERS)])
        self.size += 1
        self._by_isbn = {isbn13(s): p for p, s in enumerate(self.serial)}
        return f"dk.dbk.{isbn13(serial)}"

    def delete(self, record_reference: str, ts: int) -> None:
        """Delete a product at ``ts``: from then on it is served as a deletion (notification
        05), updated at ``ts``."""
        self._deleted.add(self.serial[self._by_isbn[record_reference.removeprefix("dk.dbk.")]])
        self.touch(record_reference, ts)

    def message(
        self,
        positions: Sequence[int],
        *,
        sent: int,
        number: int,
        release: str = "3.1",
        datestamps: str = "stamped",
    ) -> Iterator[bytes]:
        """An ONIX message holding the given products (``<NoProduct/>`` if none), streamed.

        ``release``: 3.1, 3.0 (its namespace and release) or ``none`` (no namespace);
        ``datestamps``: each product's update time, ``absent``, or one ``old`` date for all.
        The products are read when the message starts, so one that changes while the body
        streams (``touch``) is sent as it was, like a server's snapshot.
        """
        rows = [(self.serial[p], self.times[p], self.publisher[p]) for p in positions]
        ns = "" if release == "none" else f' xmlns="{NAMESPACE.replace("3.1", release)}"'
        head = f'<ONIXMessage{ns} release="{"3.0" if release == "3.0" else "3.1"}">'
        stamp = {"absent": "<Product>", "old": f'<Product datestamp="{basic(_OLD)}">'}
        return self._stream(rows, sent, number, head, stamp.get(datestamps))

    def _stream(
        self, rows: list[tuple[int, int, int]], sent: int, number: int, head: str, stamp: str | None
    ) -> Iterator[bytes]:
        yield (
            f'<?xml version="1.0" encoding="UTF-8"?>\n{head}\n'
            "<Header><Sender><SenderName>DBK Bogportalen</SenderName></Sender>"
            f"<MessageNumber>{number}</MessageNumber><SentDateTime>{basic(sent)}</SentDateTime>"
            "</Header>\n"
        ).encode()
        for row in rows:
            product = self._render(*row)
            if stamp is not None:  # '<Product datestamp="YYYYMMDDTHHMMSSZ">' replaced
                product = stamp + product[38:]
            yield product.encode()
        if not rows:
            yield b"<NoProduct/>\n"
        yield b"</ONIXMessage>\n"

    def product(self, pos: int) -> str:
        """One ``<Product>`` element, filled into one of ``TEMPLATES`` pre-rendered shapes."""
        return self._render(self.serial[pos], self.times[pos], self.publisher[pos])

    def _render(self, serial: int, ts: int, pub_no: int) -> str:
        t = (serial * 2_654_435_761 + self.seed) % TEMPLATES
        parts = self._templates.get(t)
        if parts is None:
            parts = self._templates[t] = product_template(self.seed, t).split("@@")
        published = datetime.fromtimestamp(
            max(ts - (serial * 7919) % 10**8, self._oldest_published), UTC
        )
        fill = {
            "ISBN": isbn13(serial),
            "TS": basic(ts),
            "PUB": str(pub_no),
            "PUBNAME": escape(_PUBLISHER_NAMES[pub_no % len(_PUBLISHER_NAMES)]),
            "PD": published.strftime("%Y%m%d"),
        }
        text = "".join(fill[x] if i % 2 else x for i, x in enumerate(parts))
        if serial in self._deleted:
            for was in ("03", "04"):
                text = text.replace(f"<NotificationType>{was}<", "<NotificationType>05<", 1)
        return text
