"""The simulated NOBB catalogue: deterministic per seed, compact in memory, items made on demand.

Only what filtering and sorting need is kept, in ``array`` columns indexed by item position
(positions are in ascending ``nobbNumber`` order): the number, the last-modified and created days,
and the main supplier. An item's JSON is rendered from (seed, position) when a page asks for it,
so a catalogue of 1,000,000 items costs ~20 MB and starts in about a second.
"""

from __future__ import annotations

import bisect
import random
from array import array
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import orjson

from harvester.sim.settings import DEFAULT_NOW

__all__ = ["SPAN_DAYS", "NobbCatalogue"]

#: Change dates spread over this many days up to ``now``'s day (2005-01-01..2026-11-20 by default).
SPAN_DAYS = (date(2026, 11, 20) - date(2005, 1, 1)).days
_EPOCH = date(1970, 1, 1)

_NOUNS = [
    "SKRUE",
    "SPIKER",
    "LIST",
    "PLATE",
    "BESLAG",
    "HENGSEL",
    "BORMASKIN",
    "ØKS",
    "SAG",
    "HAMMER",
    "MALING",
    "LIM",
    "ISOLASJON",
    "TAKSTEIN",
    "VINDU",
    "DØR",
    "RØR",
    "KOBLING",
    "KABEL",
    "LAMPE",
    "FLIS",
    "PANEL",
    "BJELKE",
    "STENDER",
    "SPONPLATE",
    "GIPSPLATE",
    "MEMBRAN",
    "SLUK",
    "KRAN",
]
_ADJ = ["GALV", "RUSTFRI", "HVIT", "SORT", "GRÅ", "FURU", "GRAN", "EIK", "KOMPOSITT", "ALU"]
_WORDS = [
    "og",
    "i",
    "på",
    "med",
    "til",
    "for",
    "som",
    "er",
    "av",
    "det",
    "en",
    "å",
    "har",
    "kan",
    "være",
    "skal",
    "ved",
    "fra",
    "etter",
    "over",
    "under",
    "produktet",
    "passer",
    "godt",
    "utendørs",
    "innendørs",
    "bruk",
    "montering",
    "enkel",
    "sterk",
    "lett",
    "tørr",
    "våt",
    "miljø",
    "holdbar",
    "overflate",
    "behandlet",
    "størrelse",
    "lengde",
    "bredde",
    "høyde",
    "vekt",
    "følger",
]
_SUPPLIERS = [
    f"{n} AS"
    for n in (
        "Øyo",
        "Ole Moe",
        "Fjelland Handel",
        "Schou Norge",
        "Bygg-Mart",
        "Nordisk Jern",
        "Vestlandske Trelast",
        "Trøndelag Beslag",
        "Sørlandets Verktøy",
    )
]
_PKG = ["F-PAK", "D-PAK", "T-PAK", "PSE-PAK"]
_MEDIA = ["PB", "FDV", "MTG", "MB", "TEG"]
_ETIM = ["Lengde", "Bredde", "Høyde", "Materiale", "Farge", "Overflatebehandling", "Vekt"]


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
        page renders at hundreds of MB/s; number, name, dates and supplier differ per item.
        """
        t = self._template_of(pos)
        parts = self._templates.get(t)
        if parts is None:
            parts = self._templates[t] = _split_template(orjson.dumps(self._item(t, template=True)))
        key = self.keys[pos]
        name = f"{_NOUNS[key % len(_NOUNS)]} {_ADJ[(key >> 5) % len(_ADJ)]} {key % 200}X{pos % 90}"
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

    def _extra_suppliers(self, template: int) -> list[int]:
        rng = random.Random(self.seed * 7_919 + template)
        return [100_000 + rng.randrange(700) * 37 for _ in range(rng.randrange(0, 3))]

    def _supplier_numbers(self, pos: int) -> list[int]:
        """Every supplier's participant number; the first is the main (owner) supplier."""
        return [self.owner[pos], *self._extra_suppliers(self._template_of(pos))]

    def _text(self, rng: random.Random, words: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."

    def _item(self, pos: int, *, template: bool = False) -> dict[str, object]:
        rng = random.Random(self.seed * 1_000_003 + pos)
        nobb: object = _M_KEY if template else self.keys[pos]
        name = _M_NAME
        modified: object = _M_MOD
        created: object = _M_CRE
        group = f"{rng.randrange(10, 99)}{rng.randrange(10, 99)}{rng.randrange(100, 999)}"
        big = pos % 127 == 3  # a few templates make items of 100 KB and more
        suppliers = []
        for n, participant in enumerate([0, *self._extra_suppliers(pos)]):
            owner: object = _M_OWNER if n == 0 else str(participant)
            packages = [
                {
                    "class": _PKG[k % len(_PKG)],
                    "gtin": f"70{rng.randrange(10**10, 10**11)}",
                    "gtinType": "GTIN13",
                    "weight": round(rng.uniform(0.01, 40), 4),
                    "length": rng.randrange(10, 3000),
                    "width": rng.randrange(10, 1200),
                    "height": rng.randrange(5, 1200),
                    "volume": round(rng.uniform(0.00001, 0.5), 6),
                    "unit": "STK",
                    "isPCU": k == 0,
                    "minOrderQuantity": None,
                    "deliverable": True,
                    "stocked": rng.random() < 0.5,
                    "calculatedCount": float(10**k),
                    "consistsOfCount": float(10**k),
                    "consistsOfUnit": "STK",
                    "dangerousGoods": None,
                }
                for k in range(rng.randrange(1, 5))
            ]
            media = [
                {
                    "guid": f"{rng.getrandbits(128):032x}",
                    "mediaType": _MEDIA[k % len(_MEDIA)],
                    "url": f"https://cdn.byggtjeneste.no/nobb/{rng.getrandbits(64):016x}/square",
                    "isPrimary": k == 0,
                }
                for k in range(rng.randrange(0, 3))
            ]
            suppliers.append(
                {
                    "participantNumber": owner,
                    "name": _SUPPLIERS[participant % len(_SUPPLIERS)],
                    "isMainSupplier": n == 0,
                    "supplierItemNumber": f"{rng.randrange(10**5, 10**6)}",
                    "expiryDate": None,
                    "packages": packages,
                    "media": media,
                }
            )
        etim_count = rng.randrange(400, 900) if big else rng.randrange(0, 12)
        item: dict[str, object] = {
            "nobbNumber": nobb,
            "primaryText": name,
            "secondaryText": f"{rng.randrange(100, 999)}H",
            "description": self._text(rng, rng.randrange(5, 60) if not big else 3000),
            "digitalChannelText": rng.choice(_NOUNS).title(),
            "productGroupNumber": group,
            "productGroupName": rng.choice(_NOUNS).capitalize(),
            "countryOfOrigin": rng.choice(["NO", "SE", "DK", "DE", "SI", "CN", "PL"]),
            "customsNoCode": f"{rng.randrange(10**7, 10**8)}",
            "customsEuCode": None,
            "etimClass": f"EC{rng.randrange(1, 12000):06d}",
            "manufacturerItemNumber": f"{rng.randrange(10**4, 10**5):05d}",
            "nrfInfo": None,
            "type": "Standard",
            "seriesName": None,
            "moduleNumber": None,
            "stocked": rng.random() < 0.6,
            "firstTimeApproved": created,
            "status": {"createdDate": created, "lastModifiedDate": modified},
            "suppliers": suppliers,
            "properties": {
                "etim": [
                    {
                        "propertyGuid": f"{rng.getrandbits(64):016X}",
                        "propertyName": rng.choice(_ETIM),
                        "propertyDescription": self._text(rng, 4),
                        "value": str(rng.randrange(1, 5000)),
                        "unit": rng.choice(["mm", "kg", "stk", None]),
                    }
                    for _ in range(etim_count)
                ],
                "environment": [
                    {
                        "propertyGuid": "0E474427-ED7A-4A13-89D3-4E4FB25810A1",
                        "propertyName": "Produktet omfattes av BREEAM-NOR A20 2016",
                        "value": "True",
                        "unit": "Ja/Nei",
                    }
                ]
                if rng.random() < 0.3
                else [],
                "marketing": [{"propertyName": "Produktfordel 1", "value": self._text(rng, 6)}],
                "epd": [],
                "other": [],
            },
            "nrfNumber": None,
            "elNumber": None,
            "vvsNumber": None,
            "lviNumber": None,
            "rskNumber": None,
            "dimension": f"{rng.randrange(1, 200)}X{rng.randrange(1, 200)}",
            "keyword": rng.choice(_NOUNS).lower(),
            "replacesNobbNumbers": [],
        }
        if pos % 13 == 0:
            item["futureField"] = {"addedIn": "v2.1", "note": "tolerant readers ignore this"}
        return item


TEMPLATES = 509
_M_KEY = 987_654_321_987
_M_NAME = "@@name@@"
_M_CRE = "@@created@@"
_M_MOD = "@@modified@@"
_M_OWNER = "@@owner@@"


def _split_template(body: bytes) -> list[bytes]:
    """Cut a rendered template at its markers (key, name, created x2, modified, owner)."""
    markers = [
        str(_M_KEY).encode(),
        b"@@name@@",
        b"@@created@@",
        b"@@created@@",
        b"@@modified@@",
        b"@@owner@@",
    ]
    parts: list[bytes] = []
    rest = body
    for m in markers:
        head, sep, rest = rest.partition(m)
        if not sep:
            raise AssertionError(f"template marker {m!r} missing")
        parts.append(head)
    parts.append(rest)
    return parts


def positions_after(values: Sequence[int], value: int) -> int:
    """Index of the first element of ascending ``values`` greater than ``value``."""
    return bisect.bisect_right(values, value)
