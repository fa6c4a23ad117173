"""Products converted from their bytes when their markup has a shape seen before.

The general walk (``onix_walk``) reads every element of lxml's tree through a Python proxy,
most of a conversion's cost. A catalogue repeats its product shapes (the same blocks in the same
order, other text), so a product's *shape* is its markup with each text that is not whitespace
alone as ``T`` and the attribute values cut (``shape_of``). Products of one shape have ``onix``
trees of one structure with their text in the same places: the second time a shape is seen, it
is compiled (``onix_shape_code``) into a function that builds the tree from the product's text,
split once at ``>``. lxml still checks every batch well-formed (``onix.convert_batch``), without
building a tree but for the products that are walked.

A batch holding anything a split at ``>`` would misread is walked: comments, CDATA and
processing instructions (``<!``, ``<?``), or a ``\r`` (XML normalizes line ends). So is a
product with a ``>`` in its text or an attribute value (its split has more parts than its
shape's), a product over ``_MAX_RAW`` bytes, and any shape the compiler declines (mixed
content, prefixes, ``xmlns``, a product inside a product). A compiled shape is checked against
the walk on the product that compiled it, and walked from then on if they differ. The result is
always the walk's: a property test compares the two on random markup.

A catalogue without repeats would pay for computing shapes and never use them: when fewer than a
quarter of ``_WINDOW`` products have a shape seen before, the next ``_REST`` batches are walked
without computing theirs, and each pause that follows another is twice as long (up to
``_MAX_REST``).

The processes of one run trade the shapes they compiled (``handoff``, ``adopt``: ``onix_pool``
ships them with the batches), so a shape is compiled and checked about once per run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from harvester.parse.onix_shape_calls import Build, NeedTree, code_of, deref_parts, load
from harvester.parse.onix_shape_code import compile_shape
from harvester.parse.onix_walk import PLAIN, walk

__all__ = ["Shapes", "Shipped", "declared", "shape_of"]

_SOLID = re.compile(rb">\s*[^\s<][^<]*<")  # a text with something besides whitespace
_VALUE = re.compile(rb"""=(?:"[^"<>]*"|'[^'<>]*')""")
_WINDOW, _REST, _MAX_REST = 256, 16, 1024  # products; batches, doubled while it fails
_MAX_SHAPES = 1024  # compiled shapes, and as many seen once, kept at most (then forgotten)
_MAX_RAW = 256 << 10  # a larger product is walked (ONIX products are a few kilobytes)
_WALK = (0, None)  # a shape that is always walked
_ENDS: dict[bytes, re.Pattern[bytes]] = {}

Element = Callable[[], Any]  # a product's lxml element, parsed on demand
#: Compiled shapes as one process hands them to another (``Shapes.handoff``): each shape's
#: parts and its builder's code (``None``: a shape always walked).
Shipped = dict[bytes, tuple[int, bytes | None]]


def shape_of(raw: bytes) -> bytes:
    """``raw`` with each text that is not whitespace alone as ``T``, attribute values cut (a
    ``<`` added so that the text after the last tag is marked too)."""
    return _VALUE.sub(b"=", _SOLID.sub(b">T<", raw + b"<"))


class Shapes:
    """One process's compiled product shapes; ``tree`` gives what ``onix_walk.walk`` gives."""

    def __init__(self) -> None:
        self._compiled: dict[bytes, tuple[int, Build | None]] = {}
        self._fresh: list[bytes] = []  # compiled here since the last ``handoff``
        self._seen: set[bytes] = set()
        self._tried = self._repeats = self._rest = 0
        self._pause = _REST
        #: products built from a compiled shape, not walked, since this cache began
        self.built = 0
        #: shapes compiled here (and checked against the walk) since this cache began
        self.compiles = 0

    def pieces(self, data: bytes, end_tag: bytes) -> list[bytes] | None:
        """Each product's bytes up to its end tag, when ``data`` (whole products) cuts cleanly
        at ``end_tag``; ``None`` when the batch is to be walked."""
        if self._rest > 0:
            self._rest -= 1
            return None
        if b"\r" in data or declared(data, b"!") or declared(data, b"?"):
            return None
        ends = _ENDS.get(end_tag) or _ENDS.setdefault(end_tag, re.compile(end_tag + rb"\s*"))
        pieces = ends.split(data)  # what separates products goes with the end tag: one shape
        return None if pieces.pop() else pieces

    def tree(self, raw: bytes, ns: str | None, stamps: list[str], element: Element) -> Any:
        """The ``onix`` tree of the product whose bytes (a piece of ``pieces``) are ``raw``:
        built from its compiled shape, else walked (a shape seen twice is compiled).
        ``element()`` gives its lxml element, asked for only when it is walked, or one of its
        flow elements is."""
        if len(raw) > _MAX_RAW:  # not kept as a shape: a few such keys would be megabytes
            return walk(element(), PLAIN, ns, stamps)
        self._count()
        shape = shape_of(raw)
        compiled = self._compiled.get(shape)
        if compiled is None:
            self._repeats += shape in self._seen
            return self._miss(shape, raw, element(), ns, stamps)
        self._repeats += 1
        try:
            built = _built(compiled, raw, None, ns, stamps)
        except NeedTree:
            stamps.clear()
            built = _built(compiled, raw, element(), ns, stamps)
        if built is None:  # a shape always walked, or a ">" in text
            stamps.clear()
            return walk(element(), PLAIN, ns, stamps)
        self.built += 1
        return built

    def _count(self) -> None:
        """Every ``_WINDOW`` products: if fewer than a quarter had a shape seen before, pause
        (``pieces`` then walks) for ``_pause`` batches, twice as many as the last pause."""
        self._tried += 1
        if self._tried < _WINDOW:
            return
        if self._repeats * 4 < _WINDOW:
            self._rest = self._pause
            self._pause = min(self._pause * 2, _MAX_REST)
        else:
            self._pause = _REST
        self._tried = self._repeats = 0

    def _miss(self, shape: bytes, raw: bytes, el: Any, ns: str | None,
              stamps: list[str]) -> Any:  # fmt: skip
        """Walk; compile the shape the second time it is seen, kept if it builds the same."""
        tree = walk(el, PLAIN, ns, stamps)
        if shape not in self._seen:
            if len(self._seen) >= _MAX_SHAPES:
                self._seen.clear()
            self._seen.add(shape)
            return tree
        self.compiles += 1
        compiled = compile_shape(shape) or _WALK
        if compiled[1] is not None:
            again: list[str] = []
            built = _built(compiled, raw, el, ns, again)
            if built is None or again != stamps or orjson.dumps(built) != orjson.dumps(tree):
                compiled = _WALK
        self._keep(shape, compiled)
        self._fresh.append(shape)
        return tree

    def _keep(self, shape: bytes, compiled: tuple[int, Build | None]) -> None:
        if len(self._compiled) >= _MAX_SHAPES:
            self._compiled.clear()
            self._fresh.clear()
        self._compiled[shape] = compiled

    def handoff(self) -> Shipped:
        """The shapes compiled (and checked) here since the last call, for another process of
        the run to ``adopt``: a pool worker then compiles again only what it meets first.

        Each compile costs ~1 ms and the product walked twice first (``tree``), in every process
        that meets the shape; hence the main process and its workers trade them with the
        batches (``onix_pool``). What ``adopt`` took is not handed on again.
        """
        out: Shipped = {}
        for shape in self._fresh:
            got = self._compiled.get(shape)
            if got is not None:
                out[shape] = (got[0], None if got[1] is None else code_of(got[1]))
        self._fresh.clear()
        return out

    def adopt(self, shipped: Shipped) -> None:
        """Use the shapes another process of this run compiled and checked (``handoff``; code
        from anywhere else must not come here: it runs as it stands). A shape already here is
        kept."""
        for shape, (parts, code) in shipped.items():
            if shape not in self._compiled:
                self._keep(shape, (parts, None if code is None else load(code)))


def declared(data: bytes, mark: bytes) -> bool:
    """Whether ``<`` + ``mark`` (a comment, CDATA or processing instruction) is in ``data``;
    the mark alone is sought first: one pass of ``memchr``, ~100x faster on markup."""
    return mark in data and b"<" + mark in data


def _built(compiled: tuple[int, Build | None], raw: bytes, el: Any, ns: str | None,
           stamps: list[str]) -> Any:  # fmt: skip
    """The tree built from ``raw``, or ``None``: a walked shape, or a ``>`` in text."""
    parts, build = compiled
    text = raw.decode()
    q = text.split(">")
    if build is None or len(q) != parts:
        return None
    if "&" not in text:
        return build(q, q, el, ns, stamps)
    return build(deref_parts(text), q, el, ns, stamps)
