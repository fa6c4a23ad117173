"""ONIX ``<Product>`` elements → one JSON line each: derived fields, then the lossless tree.

``convert_batch`` is what a worker process runs on a ``Batch`` from ``onix_split.py``: it parses the
products inside the message's own root start tag (so namespaces resolve as in the message) with a
hardened parser (no DTD, no entity resolution, no network, comments and PIs dropped) and returns
``(record_reference, json_line, update time)`` for each product in document order.

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
that tree by ``onix_fields.py``; docs/design.md, "DBK records", lists their rules.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import orjson
from lxml import etree

from harvester.parse.onix_fields import ProductError, envelope, epoch, iso, product_times
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
# No DTD is loaded, so no entity can be defined; none is resolved, nothing is fetched.
_HARDENED: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "remove_comments": True,
    "remove_pis": True,
    "huge_tree": False,
    "collect_ids": False,
}
_PARSER = etree.XMLParser(**_HARDENED)
_PRODUCT_TAGS = ("{*}Product", "{*}product")
_KNOWN = frozenset(SHORT_TO_REF.values())
_PLAIN, _FLAG, _FLOW = 0, 1, 2
_INFO: dict[str, tuple[str, bool, int]] = {}
_NESTED = "a <Product> inside another element"
_ATTR = re.compile(rb"""\s+([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _bare(root_open: bytes, root_tag: bytes, ns: str | None) -> bytes:
    """``root_open`` without its default namespace declaration when that is the message's own.

    The products then parse in no namespace: their tags are the bare local names (shorter to
    build and hash than ``{namespace}local``: ~20 % of the conversion), and a flow element's
    markup carries no ``xmlns`` of it, which ``_flow`` removes anyway. The names are the same:
    a name is its local part whatever its namespace (rule 1).
    """
    if ns is None:
        return root_open
    pos = 1 + len(root_tag)  # then the attributes one by one: a value is never searched
    while (m := _ATTR.match(root_open, pos)) is not None:
        value = m.group(2) if m.group(2) is not None else m.group(3)
        if m.group(1) == b"xmlns" and value.decode("utf-8", "replace") == ns:
            return root_open[: m.start()] + root_open[m.end() :]
        pos = m.end()
    return root_open


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

    The batch is parsed whole by the hardened parser, inside the message's own root start tag
    (its default namespace left out when it is the message's: ``_bare``), so the batch's tree is
    held while its products are converted: a batch is bounded (the splitter's ``batch_bytes``,
    plus one product of at most ``max_element_bytes``), and one parse of it costs ~30 % less
    than feeding a pull parser and clearing each product. Anything but products at the top
    level, or a product inside another element, is a ``ProductError``. The update time (UNIX
    seconds) is the product's own ``datestamp`` (or its newest one inside); the window planner
    splits full windows where the products are.
    """
    ns, sent = src.get("ns"), src.get("sent")
    meta = {"release": src.get("release"), "tags": src.get("tags"), "ns": ns}
    document = _bare(root_open, root_tag, ns) + data + b"</" + root_tag + b">"
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as exc:
        why = _nested(document) or f"products are not well-formed XML: {exc}"
        raise ProductError(why) from None
    products: list[Any] = list(root)  # comments and PIs are not in the tree (_HARDENED)
    for el in products:
        if _info(el.tag)[0] != "Product":
            raise ProductError(f"unexpected <{_info(el.tag)[0]}> between products")
    if sum(1 for _ in root.iter(_PRODUCT_TAGS)) != len(products):
        raise ProductError(_NESTED)
    out: list[Converted] = []
    for el in products:
        stamps: list[str] = []
        tree = _convert(el, _PLAIN, ns, stamps)
        record = envelope(tree, stamps, sent)
        record["_src"] = meta
        record["onix"] = tree
        ts = epoch(record["updated"]) if record["updated_source"] != "sent" else None
        out.append((record["record_reference"], orjson.dumps(record), ts))
    return out


def _nested(document: bytes) -> str | None:
    """``_NESTED`` if a ``<Product>`` inside another element ends before the document breaks.

    A batch is cut after a ``</Product>``, so a wrapper around products leaves the batch
    unbalanced: the syntax error is true, this says why.
    """
    parser = etree.XMLPullParser(events=("end",), tag=_PRODUCT_TAGS, **_HARDENED)
    with contextlib.suppress(etree.XMLSyntaxError):  # the events before the break stay
        parser.feed(document)
    events: Any = parser.read_events()  # (event, element): the stubs say less
    for _, el in events:
        parent = el.getparent()
        if parent is None or parent.getparent() is not None:
            return _NESTED
    return None
