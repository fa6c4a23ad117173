"""What one simulated NOBB item looks like: its fields, drawn per (seed, template).

An item is one of ``TEMPLATES`` shapes. ``template_parts`` renders a shape once, as JSON with
markers where each item's own values go (number, name, created twice, modified, owner) and cut
at them; the catalogue (``catalogue.py``) joins the parts with those values. ``item_name`` is an
item's name, from its number and position; ``extra_suppliers`` a template's suppliers besides
the main one, which the catalogue's supplier filter matches too.
"""

from __future__ import annotations

import random

import orjson

__all__ = ["TEMPLATES", "extra_suppliers", "item_name", "template_parts"]

TEMPLATES = 509
_M_KEY = 987_654_321_987
_M_NAME = "@@name@@"
_M_CRE = "@@created@@"
_M_MOD = "@@modified@@"
_M_OWNER = "@@owner@@"

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


def item_name(key: int, pos: int) -> str:
    """The ``primaryText`` of the item numbered ``key`` at catalogue position ``pos``."""
    return f"{_NOUNS[key % len(_NOUNS)]} {_ADJ[(key >> 5) % len(_ADJ)]} {key % 200}X{pos % 90}"


def extra_suppliers(seed: int, template: int) -> list[int]:
    """The participant numbers of a template's suppliers after the main one (0 to 2)."""
    rng = random.Random(seed * 7_919 + template)
    return [100_000 + rng.randrange(700) * 37 for _ in range(rng.randrange(0, 3))]


def template_parts(seed: int, template: int) -> list[bytes]:
    """Template ``template`` rendered (compact JSON) and cut at its markers: 7 parts."""
    return _split_template(orjson.dumps(_item(seed, template)))


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _item(seed: int, template: int) -> dict[str, object]:
    """Template ``template``'s fields, with markers where each item's own values go."""
    # Drawn from one generator in the order written: moving a draw changes every item's bytes.
    rng = random.Random(seed * 1_000_003 + template)
    group = f"{rng.randrange(10, 99)}{rng.randrange(10, 99)}{rng.randrange(100, 999)}"
    big = template % 127 == 3  # a few templates make items of 100 KB and more
    participants = [0, *extra_suppliers(seed, template)]
    suppliers = [_supplier(rng, n, participant) for n, participant in enumerate(participants)]
    etim_count = rng.randrange(400, 900) if big else rng.randrange(0, 12)
    item = _head(rng, group, big)
    item["suppliers"] = suppliers
    item["properties"] = _properties(rng, etim_count)
    item.update(_tail(rng))
    if template % 13 == 0:
        item["futureField"] = {"addedIn": "v2.1", "note": "tolerant readers ignore this"}
    return item


def _supplier(rng: random.Random, n: int, participant: int) -> dict[str, object]:
    """The ``n``-th supplier (0: the main one, whose number is the owner marker)."""
    owner: object = _M_OWNER if n == 0 else str(participant)
    packages = [_package(rng, k) for k in range(rng.randrange(1, 5))]
    media = [_medium(rng, k) for k in range(rng.randrange(0, 3))]
    return {
        "participantNumber": owner,
        "name": _SUPPLIERS[participant % len(_SUPPLIERS)],
        "isMainSupplier": n == 0,
        "supplierItemNumber": f"{rng.randrange(10**5, 10**6)}",
        "expiryDate": None,
        "packages": packages,
        "media": media,
    }


def _package(rng: random.Random, k: int) -> dict[str, object]:
    """A supplier's ``k``-th package level (0: the consumer unit)."""
    return {
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


def _medium(rng: random.Random, k: int) -> dict[str, object]:
    """A supplier's ``k``-th media file (0: the primary one)."""
    return {
        "guid": f"{rng.getrandbits(128):032x}",
        "mediaType": _MEDIA[k % len(_MEDIA)],
        "url": f"https://cdn.byggtjeneste.no/nobb/{rng.getrandbits(64):016x}/square",
        "isPrimary": k == 0,
    }


def _head(rng: random.Random, group: str, big: bool) -> dict[str, object]:
    """The item's fields before ``suppliers``: identity, texts, codes and dates (markers)."""
    return {
        "nobbNumber": _M_KEY,
        "primaryText": _M_NAME,
        "secondaryText": f"{rng.randrange(100, 999)}H",
        "description": _text(rng, rng.randrange(5, 60) if not big else 3000),
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
        "firstTimeApproved": _M_CRE,
        "status": {"createdDate": _M_CRE, "lastModifiedDate": _M_MOD},
    }


def _properties(rng: random.Random, etim_count: int) -> dict[str, object]:
    """The item's ``properties``: ``etim_count`` ETIM values, environment, marketing."""
    etim = [_etim(rng) for _ in range(etim_count)]
    environment = (
        [
            {
                "propertyGuid": "0E474427-ED7A-4A13-89D3-4E4FB25810A1",
                "propertyName": "Produktet omfattes av BREEAM-NOR A20 2016",
                "value": "True",
                "unit": "Ja/Nei",
            }
        ]
        if rng.random() < 0.3
        else []
    )
    return {
        "etim": etim,
        "environment": environment,
        "marketing": [{"propertyName": "Produktfordel 1", "value": _text(rng, 6)}],
        "epd": [],
        "other": [],
    }


def _etim(rng: random.Random) -> dict[str, object]:
    """One ETIM property value."""
    return {
        "propertyGuid": f"{rng.getrandbits(64):016X}",
        "propertyName": rng.choice(_ETIM),
        "propertyDescription": _text(rng, 4),
        "value": str(rng.randrange(1, 5000)),
        "unit": rng.choice(["mm", "kg", "stk", None]),
    }


def _tail(rng: random.Random) -> dict[str, object]:
    """The item's fields after ``properties``: trade numbers, dimension, keyword."""
    return {
        "nrfNumber": None,
        "elNumber": None,
        "vvsNumber": None,
        "lviNumber": None,
        "rskNumber": None,
        "dimension": f"{rng.randrange(1, 200)}X{rng.randrange(1, 200)}",
        "keyword": rng.choice(_NOUNS).lower(),
        "replacesNobbNumbers": [],
    }


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
