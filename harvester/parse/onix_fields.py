"""The derived fields of a DBK record, read from a Product's lossless ``onix`` tree.

Rules (docs/design.md, "DBK records"): ``isbn13`` is ProductIDType 15, else a 978/979 GTIN
(type 03); ``title`` is TitleType 01 / TitleElementLevel 01, prefix + title without prefix, else
TitleText; contributors' names are PersonName, else NamesBeforeKey + KeyNames, else
CorporateName; ``publisher`` is PublishingRole 01; dates (``dt.DateOrDateTime``) become ISO 8601
extended; ``updated`` is the Product's ``datestamp``, else its newest inner one, else the
message's SentDateTime, and ``updated_source`` says which. No lxml here: plain dicts in, out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

__all__ = ["ProductError", "envelope", "epoch", "iso", "product_times"]

_DATE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(?:T(\d{2})(\d{2})(\d{2})?)?(Z|[+-]\d{4})?$")


class ProductError(ValueError):
    """A batch or product that cannot be converted (a plain exception: it crosses processes)."""


def _text(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is list:
        return _text(value[0]) if value else None
    if kind is dict:
        text = value.get("#text")
        return text if type(text) is str else None
    return None


def _each(value: Any) -> list[dict[str, Any]]:
    """The objects in ``value`` (a list of them, one, or none); the list itself when it holds
    only objects (read, never changed, by the callers)."""
    kind = type(value)
    if kind is dict:
        return [value]
    if kind is not list:
        return []
    for v in value:
        if type(v) is not dict:
            return [v for v in value if type(v) is dict]
    return value  # type: ignore[no-any-return]


def _pick(items: list[dict[str, Any]], key: str, code: str) -> dict[str, Any] | None:
    for item in items:
        if _text(item.get(key)) == code:
            return item
    return items[0] if items else None


def iso(value: str | None) -> str | None:
    """ONIX ``dt.DateOrDateTime`` (``20250204T0930Z``…) as ISO 8601 extended; else as given."""
    if value is None:
        return None
    # The two forms nearly every date takes, sliced without the pattern (same result).
    if len(value) == 8 and value.isascii() and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    if (
        len(value) == 16
        and value[8] == "T"
        and value[15] == "Z"
        and value.isascii()
        and value[:8].isdigit()
        and value[9:15].isdigit()
    ):
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}T{value[9:11]}:{value[11:13]}:{value[13:15]}Z"
    m = _DATE.match(value.strip())
    if not m:
        return value
    y, mo, d, hh, mm, ss, zone = m.groups()
    out = "-".join(p for p in (y, mo, d) if p)
    if hh is not None:
        out += f"T{hh}:{mm}:{ss or '00'}"
        if zone:
            out += "Z" if zone == "Z" else f"{zone[:3]}:{zone[3:]}"
    return out


def envelope(tree: Any, stamps: list[str], sent: str | None) -> dict[str, Any]:
    """The derived fields, in output order; ``ProductError`` without a RecordReference."""
    ref = _text(tree.get("RecordReference")) if isinstance(tree, dict) else None
    if not ref or not ref.strip():
        raise ProductError("a <Product> without a RecordReference")
    ids: dict[str | None, str | None] = {}
    for pid in _each(tree.get("ProductIdentifier")):
        ids.setdefault(_text(pid.get("ProductIDType")), _text(pid.get("IDValue")))
    gtin = ids.get("03")
    isbn = ids.get("15") or (gtin if gtin and gtin[:3] in ("978", "979") else None)
    detail = _each(tree.get("DescriptiveDetail"))
    dd = detail[0] if detail else {}
    title, subtitle = _title(dd)
    pub = _each(tree.get("PublishingDetail"))
    pd = pub[0] if pub else {}
    publisher = _pick(_each(pd.get("Publisher")), "PublishingRole", "01") or {}
    imprint = (_each(pd.get("Imprint")) or [{}])[0]
    date_el = _pick(_each(pd.get("PublishingDate")), "PublishingDateRole", "01") or {}
    language = _pick(_each(dd.get("Language")), "LanguageRole", "01") or {}
    notification = _text(tree.get("NotificationType"))
    updated, source = _updated(tree.get("@datestamp"), stamps, sent)
    return {
        "record_reference": ref.strip(),
        "isbn13": isbn,
        "gtin13": gtin,
        "notification_type": notification,
        "deleted": notification == "05",
        "title": title,
        "subtitle": subtitle,
        "contributors": _contributors(dd),
        "publisher": _text(publisher.get("PublisherName")),
        "imprint": _text(imprint.get("ImprintName")),
        "publishing_status": _text(pd.get("PublishingStatus")),
        "publication_date": iso(_text(date_el.get("Date"))),
        "language": _text(language.get("LanguageCode")),
        "product_form": _text(dd.get("ProductForm")),
        "prices": _prices(tree),
        "updated": iso(updated),
        "updated_source": source,
    }


def _title(dd: Any) -> tuple[str | None, str | None]:
    """The distinctive title (type 01) at product level (01), with its prefix; and its subtitle."""
    title_el = _pick(_each(dd.get("TitleDetail")), "TitleType", "01") or {}
    element = _pick(_each(title_el.get("TitleElement")), "TitleElementLevel", "01") or {}
    prefix, rest = _text(element.get("TitlePrefix")), _text(element.get("TitleWithoutPrefix"))
    title = f"{prefix} {rest}" if prefix and rest else rest or _text(element.get("TitleText"))
    return title, _text(element.get("Subtitle"))


def _contributors(dd: Any) -> list[dict[str, str | None]]:
    """Each contributor's role and name: PersonName, else before-key + key, else corporate."""
    contributors = []
    for c in _each(dd.get("Contributor")):
        before, key = _text(c.get("NamesBeforeKey")), _text(c.get("KeyNames"))
        name = (
            _text(c.get("PersonName"))
            or (f"{before} {key}" if before and key else key)
            or _text(c.get("CorporateName"))
        )
        contributors.append({"role": _text(c.get("ContributorRole")), "name": name})
    return contributors


def _prices(tree: Any) -> list[dict[str, str | None]]:
    """Every price of every supply detail, with its first territory's countries."""
    prices = []
    for supply in _each(tree.get("ProductSupply")):
        for sd in _each(supply.get("SupplyDetail")):
            for p in _each(sd.get("Price")):
                territory = (_each(p.get("Territory")) or [{}])[0]
                prices.append(
                    {
                        "type": _text(p.get("PriceType")),
                        "amount": _text(p.get("PriceAmount")),
                        "currency": _text(p.get("CurrencyCode")),
                        "countries": _text(territory.get("CountriesIncluded")),
                    }
                )
    return prices


def _updated(own: Any, stamps: list[str], sent: str | None) -> tuple[Any, str | None]:
    """When the record changed and whence: its datestamp, the file's latest, or the sent date."""
    if own:
        return own, "datestamp"
    if stamps:
        return max(stamps, key=iso_key), "max_datestamp"
    if sent:
        return sent, "sent"
    return None, None


_STAMP = re.compile(rb"<(?:[\w.-]+:)?(?:Product|product)\s[^>]*?datestamp\s*=\s*[\"']([^\"']*)")


def product_times(data: bytes) -> list[int]:
    """The ``datestamp`` of each ``<Product>`` start tag in raw bytes, as UNIX seconds."""
    out = []
    for raw in _STAMP.findall(data):
        ts = epoch(iso(raw.decode("ascii", "replace")))
        if ts is not None:
            out.append(ts)
    return out


def epoch(value: str | None) -> int | None:
    """An ISO 8601 time as UNIX seconds (UTC when it has no zone); None if not one."""
    try:
        when = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    if when is None:
        return None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def iso_key(value: str) -> str:
    """Sort key of an ONIX date/time: its ISO form (same zone assumed)."""
    return iso(value) or ""
