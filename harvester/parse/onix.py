"""ONIX ``<Product>`` elements → one JSON line each: derived fields, then the lossless tree.

``convert_batch`` is what a worker process runs on a ``Batch`` from ``onix_split.py``: it parses
the products inside the message's own root start tag (so namespaces resolve as in the message)
with a hardened parser (no DTD, no entity resolution, no network, comments and PIs dropped) and
returns ``(record_reference, json_line)`` pairs in document order.

The ``onix`` tree follows fixed rules, so its shape never depends on how many times an element
happens to occur (``to_xml`` in ``onix_xml.py`` rebuilds the XML from it):

1. keys are reference names (short tags are translated; the namespace is dropped and recorded
   in ``_src``); unknown names keep their local name;
2. an element with text and no attributes is its text, a string, never cast (codes keep their
   leading zeros); attributes become ``@name`` keys beside ``#text``;
3. names the ONIX 3.1 XSD lets repeat, and unknown names, are always lists; others are scalars
   (a scalar that repeats anyway, in an invalid message, becomes a list: never dropped);
4. the empty flag elements (``<NoPrefix/>``, ``<MainSubject/>``…) are ``true``;
5. XHTML "flow" elements (``Text``, ``BiographicalNote``…), and any element with both children
   and text, are their inner markup as a string, the ONIX default namespace removed.

Derived fields (``isbn13``, ``title``, ``contributors``, ``prices``, ``updated``…) are read from
that tree; README "DBK records" lists their rules.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from lxml import etree

from harvester.parse.onix_tags import FLAGS, FLOW, REPEATABLE, SHORT_TO_REF

__all__ = [
    "Converted",
    "ProductError",
    "Src",
    "convert_batch",
    "iso",
    "product_times",
    "read_header",
]

Src = dict[str, str | None]
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    remove_comments=True,
    remove_pis=True,
    huge_tree=False,
    collect_ids=False,
)
_KNOWN = frozenset(SHORT_TO_REF.values())
_PLAIN, _FLAG, _FLOW = 0, 1, 2
_INFO: dict[str, tuple[str, bool, int]] = {}
_DATE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(?:T(\d{2})(\d{2})(\d{2})?)?(Z|[+-]\d{4})?$")


class ProductError(ValueError):
    """A batch or product that cannot be converted (a plain exception: it crosses processes)."""


def _info(tag: str) -> tuple[str, bool, int]:
    found = _INFO.get(tag)
    if found is None:
        local = tag.rpartition("}")[2]
        name = SHORT_TO_REF.get(local, local)
        kind = _FLAG if name in FLAGS else _FLOW if name in FLOW else _PLAIN
        found = _INFO[tag] = (name, name in REPEATABLE or name not in _KNOWN, kind)
    return found


def _attrs(items: list[tuple[str, str]], stamps: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in items:
        if key[0] == "{":
            ns, _, local = key[1:].partition("}")
            key = "xml:" + local if ns == "http://www.w3.org/XML/1998/namespace" else local
        out["@" + key] = value
        if key == "datestamp":
            stamps.append(value)
    return out


def _flow(el: Any, ns: str | None) -> str:
    markup: str = etree.tostring(el, encoding="unicode", with_tail=False)
    if markup.endswith("/>") and len(el) == 0 and not el.text:
        return ""
    inner = markup[markup.index(">") + 1 : markup.rindex("</")]
    return inner.replace(f' xmlns="{ns}"', "") if ns else inner


def _convert(el: Any, kind: int, ns: str | None, stamps: list[str]) -> Any:
    items = el.items()
    if kind == _FLOW:
        inner = _flow(el, ns)
        if items:
            out = _attrs(items, stamps)
            out["#text"] = inner
            return out
        return inner
    text = el.text
    if len(el) == 0:
        if items:
            out = _attrs(items, stamps)
            if text is not None and (kind != _FLAG or text.strip()):
                out["#text"] = text
            return out
        if kind == _FLAG and (text is None or not text.strip()):
            return True
        return "" if text is None else text
    out = _attrs(items, stamps) if items else {}
    mixed = text is not None and not text.isspace()
    info = _INFO
    for child in el:
        tag = child.tag
        name, repeatable, ckind = info.get(tag) or _info(tag)
        # The common case inline (no call): a plain element with text only.
        if ckind == _PLAIN and not len(child) and not child.items():
            value = child.text
            if value is None:
                value = ""
        else:
            value = _convert(child, ckind, ns, stamps)
        tail = child.tail
        if tail is not None and not tail.isspace():
            mixed = True
        if repeatable:
            seen = out.get(name)
            if seen is None:
                out[name] = [value]
            else:
                seen.append(value)
        elif name in out:
            prev = out[name]
            out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[name] = value
    if mixed:
        return _convert(el, _FLOW, ns, stamps)  # mixed content: kept as markup
    return out


def read_header(document: bytes) -> Src:
    """The message's release, tag style, namespace and sent time, from its prologue."""
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ProductError(f"the message header is not well-formed XML: {exc}") from None
    ns, _, local = root.tag[1:].rpartition("}") if root.tag[0] == "{" else ("", "", root.tag)
    sent = None
    for el in root.iter():
        if isinstance(el.tag, str) and _info(el.tag)[0] == "SentDateTime":
            sent = (el.text or "").strip() or None
            break
    return {
        "release": root.get("release"),
        "tags": "short" if local == "ONIXmessage" else "reference",
        "ns": ns or None,
        "sent": sent,
    }


Converted = tuple[str, bytes, int | None]


def convert_batch(root_open: bytes, root_tag: bytes, data: bytes, src: Src) -> list[Converted]:
    """Parse whole products: ``(record_reference, json_line, update time or None)`` for each.

    The update time (UNIX seconds) is the product's own ``datestamp`` (or its newest one inside);
    the window planner splits full windows where the products are.
    """
    try:
        root = etree.fromstring(root_open + data + b"</" + root_tag + b">", _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ProductError(f"products are not well-formed XML: {exc}") from None
    meta = {"release": src.get("release"), "tags": src.get("tags"), "ns": src.get("ns")}
    ns = src.get("ns")
    out = []
    for el in root:
        if not isinstance(el.tag, str):
            continue
        name, _, _ = _info(el.tag)
        if name != "Product":
            raise ProductError(f"unexpected <{name}> between products")
        stamps: list[str] = []
        tree = _convert(el, _PLAIN, ns, stamps)
        record = _envelope(tree, stamps, src.get("sent"))
        record["_src"] = meta
        record["onix"] = tree
        ts = _epoch(record["updated"]) if record["updated_source"] != "sent" else None
        out.append((record["record_reference"], orjson.dumps(record), ts))
        el.clear()
    return out


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
    kind = type(value)
    if kind is list:
        return [v for v in value if type(v) is dict]
    return [value] if kind is dict else []


def _pick(items: list[dict[str, Any]], key: str, code: str) -> dict[str, Any] | None:
    for item in items:
        if _text(item.get(key)) == code:
            return item
    return items[0] if items else None


def iso(value: str | None) -> str | None:
    """ONIX ``dt.DateOrDateTime`` (``20250204T0930Z``…) as ISO 8601 extended; else as given."""
    if value is None:
        return None
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


def _envelope(tree: Any, stamps: list[str], sent: str | None) -> dict[str, Any]:
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
    title_el = _pick(_each(dd.get("TitleDetail")), "TitleType", "01") or {}
    element = _pick(_each(title_el.get("TitleElement")), "TitleElementLevel", "01") or {}
    prefix, rest = _text(element.get("TitlePrefix")), _text(element.get("TitleWithoutPrefix"))
    title = f"{prefix} {rest}" if prefix and rest else rest or _text(element.get("TitleText"))
    contributors = []
    for c in _each(dd.get("Contributor")):
        before, key = _text(c.get("NamesBeforeKey")), _text(c.get("KeyNames"))
        name = (_text(c.get("PersonName")) or (f"{before} {key}" if before and key else key)
                or _text(c.get("CorporateName")))  # fmt: skip
        contributors.append({"role": _text(c.get("ContributorRole")), "name": name})
    pub = _each(tree.get("PublishingDetail"))
    pd = pub[0] if pub else {}
    publisher = _pick(_each(pd.get("Publisher")), "PublishingRole", "01") or {}
    imprint = (_each(pd.get("Imprint")) or [{}])[0]
    date_el = _pick(_each(pd.get("PublishingDate")), "PublishingDateRole", "01") or {}
    language = _pick(_each(dd.get("Language")), "LanguageRole", "01") or {}
    prices = []
    for supply in _each(tree.get("ProductSupply")):
        for sd in _each(supply.get("SupplyDetail")):
            for p in _each(sd.get("Price")):
                territory = (_each(p.get("Territory")) or [{}])[0]
                prices.append({
                    "type": _text(p.get("PriceType")), "amount": _text(p.get("PriceAmount")),
                    "currency": _text(p.get("CurrencyCode")),
                    "countries": _text(territory.get("CountriesIncluded")),
                })  # fmt: skip
    notification = _text(tree.get("NotificationType"))
    own = tree.get("@datestamp")
    updated, source = (
        (own, "datestamp") if own else (max(stamps, key=iso_key), "max_datestamp") if stamps
        else (sent, "sent") if sent else (None, None)
    )  # fmt: skip
    return {
        "record_reference": ref.strip(),
        "isbn13": isbn,
        "gtin13": gtin,
        "notification_type": notification,
        "deleted": notification == "05",
        "title": title,
        "subtitle": _text(element.get("Subtitle")),
        "contributors": contributors,
        "publisher": _text(publisher.get("PublisherName")),
        "imprint": _text(imprint.get("ImprintName")),
        "publishing_status": _text(pd.get("PublishingStatus")),
        "publication_date": iso(_text(date_el.get("Date"))),
        "language": _text(language.get("LanguageCode")),
        "product_form": _text(dd.get("ProductForm")),
        "prices": prices,
        "updated": iso(updated),
        "updated_source": source,
    }


_STAMP = re.compile(rb"<(?:[\w.-]+:)?(?:Product|product)\s[^>]*?datestamp\s*=\s*[\"']([^\"']*)")


def product_times(data: bytes) -> list[int]:
    """The ``datestamp`` of each ``<Product>`` start tag in raw bytes, as UNIX seconds."""
    out = []
    for raw in _STAMP.findall(data):
        ts = _epoch(iso(raw.decode("ascii", "replace")))
        if ts is not None:
            out.append(ts)
    return out


def _epoch(value: str | None) -> int | None:
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
