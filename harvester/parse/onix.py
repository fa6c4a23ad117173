"""ONIX ``<Product>`` elements → one JSON line each: derived fields, then the lossless tree.

``convert_batch`` is what converts a ``Batch`` from ``onix_split.py``, here or in a worker
process (``onix_worker.convert_shared``): it parses the products inside the message's own root
start tag (so namespaces resolve as in the message) with a hardened parser (no DTD, no entity
resolution, no network, comments and PIs dropped) and returns ``(record_reference, json_line,
update time)`` for each product in document order.

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
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, cast

import orjson
from lxml import etree

from harvester.parse.onix_fields import ProductError, envelope, epoch, iso, product_times
from harvester.parse.onix_shapes import Shapes, declared
from harvester.parse.onix_walk import PLAIN, info, walk

__all__ = [
    "SHAPES",
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
_NESTED = "a <Product> inside another element"
SHAPES = Shapes()  #: this process's compiled product shapes (a worker's: ``onix_worker``)
_ATTR = re.compile(rb"""\s+([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_PART_BYTES = 64 << 10


def _bare(root_open: bytes, root_tag: bytes, ns: str | None) -> bytes:
    """``root_open`` without its default namespace declaration when that is the message's own.

    The products then parse in no namespace: their tags are the bare local names (shorter to
    build and hash than ``{namespace}local``: ~20 % of the conversion), and a flow element's
    markup carries no ``xmlns`` of it, which ``onix_walk.flow`` removes anyway. The names are
    the same: a name is its local part whatever its namespace (rule 1).
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


def read_header(document: bytes) -> Src:
    """The message's release, tag style, namespace and sent time, from its prologue."""
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ProductError(f"the message header is not well-formed XML: {exc}") from None
    ns, _, local = root.tag[1:].rpartition("}") if root.tag[0] == "{" else ("", "", root.tag)
    sent = None
    for el in root.iter():
        if isinstance(el.tag, str) and info(el.tag)[0] == "SentDateTime":
            sent = (el.text or "").strip() or None
            break
    return {
        "release": root.get("release"),
        "tags": "short" if local == "ONIXmessage" else "reference",
        "ns": ns or None,
        "sent": sent,
    }


Converted = tuple[str, bytes, int | None]


def convert_batch(
    root_open: bytes, root_tag: bytes, data: bytes, src: Src, shapes: Shapes | None = SHAPES
) -> list[Converted]:
    """Parse whole products: ``(record_reference, json_line, update time or None)`` for each.

    A batch over ``_PART_BYTES`` (64 KB) is converted in parts of about that size, each cut
    after a product's end tag (``_parts``): the bytes the parser checks are still in the core's
    cache when the products are built from them, while the batches the pool ships stay large
    (docs/benchmarks.md, "What moved the DBK figure"). Each part (a smaller batch is one part)
    is converted as follows.

    The part is parsed whole by the hardened parser, inside the message's own root start tag
    (its default namespace left out when it is the message's: ``_bare``), so the part's tree is
    held while its products are converted: a part is bounded (``_PART_BYTES``, or the
    splitter's ``batch_bytes`` when it is not cut, plus one product of at most
    ``max_element_bytes``), and one parse of it costs ~30 % less
    than feeding a pull parser and clearing each product. Anything but products at the top
    level, or a product inside another element, is a ``ProductError``. The update time (UNIX
    seconds) is the product's own ``datestamp`` (or its newest one inside); the window planner
    splits full windows where the products are.

    ``shapes`` (this process's, by default) builds the trees of products whose shape it has
    compiled; ``None`` walks every product, with the same result (``onix_shapes``). A part
    that ``shapes`` splits into its products is only checked well-formed, by the same parser
    without a tree (about half a parse's cost), and a product that is walked is parsed alone;
    a part that does not split, or a piece that does not parse alone as one product, goes the
    way above (the whole tree, and its errors).
    """
    end = b"</product>" if src.get("tags") == "short" else b"</Product>"
    head = _bare(root_open, root_tag, src.get("ns"))
    close = b"</" + root_tag + b">"
    if len(data) > _PART_BYTES:
        return [
            record
            for part in _parts(data, end)
            for record in _convert_part(head, close, part, src, shapes, end)
        ]
    return _convert_part(head, close, data, src, shapes, end)


def _parts(data: bytes, end: bytes) -> Iterator[bytes]:
    """``data`` cut every ``_PART_BYTES`` or so, after an ``end`` tag and what follows it up to
    the next ``<``: whole products, each part converted as a batch. Whole when it has no such
    tag past that size, or holds a comment, CDATA or a processing instruction (``<!``, ``<?``:
    an end tag in one is not one)."""
    if declared(data, b"!") or declared(data, b"?"):
        yield data
        return
    lo = 0
    while len(data) - lo > _PART_BYTES:
        at = data.find(end, lo + _PART_BYTES)
        if at < 0:
            break
        cut = data.find(b"<", at + len(end))
        cut = len(data) if cut < 0 else cut
        yield data[lo:cut]
        lo = cut
    if lo < len(data):
        yield data[lo:]


def _convert_part(head: bytes, close: bytes, data: bytes, src: Src, shapes: Shapes | None,
                  end: bytes) -> list[Converted]:  # fmt: skip
    """One part (``convert_batch``) in the root start tag ``head`` and end tag ``close``."""
    ns = src.get("ns")
    document = head + data + close
    pieces = None if shapes is None else shapes.pieces(data, end)
    trees = None
    if pieces is not None and shapes is not None and _well_formed(document):
        alone = pieces  # a product to walk is parsed alone, in the message's root
        with contextlib.suppress(_NotLone):
            trees = _from_pieces(pieces, shapes, ns, lambda i: _lone(head + alone[i] + end + close))
    if trees is None:
        products = _products(document)
        if pieces is not None and shapes is not None and len(pieces) == len(products):
            trees = _from_pieces(pieces, shapes, ns, products.__getitem__)
        else:
            trees = []
            for el in products:
                stamps: list[str] = []
                trees.append((walk(el, PLAIN, ns, stamps), stamps))
    meta = {"release": src.get("release"), "tags": src.get("tags"), "ns": ns}
    return [_converted(tree, stamps, src.get("sent"), meta) for tree, stamps in trees]


class _NotLone(Exception):
    """A piece that does not parse alone as one product: the batch goes the way of its tree."""


def _from_pieces(
    pieces: list[bytes], shapes: Shapes, ns: str | None, element: Callable[[int], Any]
) -> list[tuple[Any, list[str]]]:
    """Each piece's tree and stamps; ``element(i)`` gives product ``i``'s lxml element."""
    out: list[tuple[Any, list[str]]] = []
    for i, raw in enumerate(pieces):
        stamps: list[str] = []
        out.append((shapes.tree(raw, ns, stamps, partial(element, i)), stamps))
    return out


def _lone(document: bytes) -> Any:
    """The one product of ``document`` (a root holding it alone), or ``_NotLone``."""
    try:
        products = _products(document)
    except ProductError:
        raise _NotLone from None
    if len(products) != 1:
        raise _NotLone
    return products[0]


def _products(document: bytes) -> list[Any]:
    """The batch's products as lxml elements; ``ProductError`` for what is not a product."""
    try:
        root = etree.fromstring(document, _PARSER)
    except etree.XMLSyntaxError as exc:
        why = _nested(document) or f"products are not well-formed XML: {exc}"
        raise ProductError(why) from None
    products: list[Any] = list(root)  # comments and PIs are not in the tree (_HARDENED)
    for el in products:
        if info(el.tag)[0] != "Product":
            raise ProductError(f"unexpected <{info(el.tag)[0]}> between products")
    if sum(1 for _ in root.iter(_PRODUCT_TAGS)) != len(products):
        raise ProductError(_NESTED)
    return products


class _Check:
    """A parser target with no callbacks: lxml then builds nothing and calls no Python."""

    def close(self) -> None:
        return None


# The stubs' ParserTarget asks for every callback; lxml calls only those a target has.
_CHECK = etree.XMLParser(target=cast(Any, _Check()), **_HARDENED)


def _well_formed(document: bytes) -> bool:
    """Whether the hardened parser reads ``document`` without error (no tree is built)."""
    try:
        etree.fromstring(document, _CHECK)
    except etree.XMLSyntaxError:
        return False
    return True


def _converted(tree: Any, stamps: list[str], sent: str | None, meta: Src) -> Converted:
    record = envelope(tree, stamps, sent)
    record["_src"] = meta
    record["onix"] = tree
    ts = epoch(record["updated"]) if record["updated_source"] != "sent" else None
    return record["record_reference"], orjson.dumps(record), ts


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
