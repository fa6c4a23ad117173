"""The lossless ``onix`` tree of a record back to ONIX XML (the inverse of ``onix.py``'s rules).

For users who need the XML again (to re-validate a product, or feed an ONIX tool) and for the
round-trip property test: ``to_xml(record["onix"])`` gives a ``<Product>`` whose canonical form
equals the original's, comments and processing instructions aside (they are not kept).
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from harvester.parse.onix_tags import FLAGS, FLOW, REF_TO_SHORT

__all__ = ["to_xml"]

NAMESPACE = "http://ns.editeur.org/onix/3.1/reference"
_XML_NS = "{http://www.w3.org/XML/1998/namespace}"
_FRAGMENT = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def to_xml(tree: dict[str, Any], *, ns: str | None = NAMESPACE, short: bool = False) -> bytes:
    """One ``<Product>`` element as bytes, in namespace ``ns`` (None: none), reference or short."""
    el = _build(None, "Product", tree, ns, short)
    return bytes(etree.tostring(el, encoding="utf-8", xml_declaration=False))


def _tag(name: str, ns: str | None, short: bool) -> str:
    local = REF_TO_SHORT.get(name, name) if short else name
    return f"{{{ns}}}{local}" if ns else local


def _build(parent: Any, name: str, value: Any, ns: str | None, short: bool) -> Any:
    tag = _tag(name, ns, short)
    if parent is None:
        nsmap: Any = {None: ns} if ns else None  # the default namespace, as in a message
        el = etree.Element(tag, nsmap=nsmap)
    else:
        el = etree.SubElement(parent, tag)
    if value is True:
        return el
    if isinstance(value, str):
        _content(el, name, value, ns)
        return el
    for key, item in value.items():
        if key == "#text":
            _content(el, name, item, ns)
        elif key.startswith("@"):
            attr = key[1:]
            el.set(_XML_NS + attr[4:] if attr.startswith("xml:") else attr, item)
        else:
            for v in item if isinstance(item, list) else [item]:
                _build(el, key, v, ns, short)
    return el


def _content(el: Any, name: str, text: str, ns: str | None) -> None:
    if name not in FLOW or ("<" not in text and "&" not in text):
        if name not in FLAGS or text:
            el.text = text
        return
    # Flow content is markup: parse it inside a wrapper in the element's namespace, so
    # unprefixed XHTML lands in that namespace as it was in the message.
    xmlns = f' xmlns="{ns}"' if ns else ""
    wrapper = etree.fromstring(f"<w{xmlns}>{text}</w>".encode(), _FRAGMENT)
    el.text = wrapper.text
    for child in wrapper:
        el.append(child)
