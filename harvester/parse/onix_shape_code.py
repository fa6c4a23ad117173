"""A product shape compiled to Python: one function that builds the ``onix`` tree from text.

``compile_shape`` reads a shape (``onix_shapes.shape_of``: the product's markup with each text
that is not whitespace alone as ``T`` and attribute values cut) and writes a function
``build(p, q, el, ns, stamps)``. ``q`` is the product's decoded bytes split at ``>``; ``p`` the
same with references resolved (``q`` itself when there are none). Part ``k + 1`` of a split
holds the text after tag ``k``, then ``<`` and tag ``k + 1``, so a leaf's text is a slice of one
part whose length the shape fixes (``p[k + 1][:-cut]``), a start tag's attributes are the end of
part ``k`` (``onix_shape_calls.tag_attrs``) and a flow element's inner markup is its parts
joined again (``flow_text``). The function is one dict display, its keys and list-or-not decided
here, once, by the rules of ``onix_walk.walk``; what it reads first (attributes, flow) are
statements before it, in document order, so ``stamps`` fills in the walk's order.

A flow element's bytes are its markup only where lxml would write the same: every tag inside it
plain (``<b>``, ``</b>``, ``<br/>``: no attribute, no space, no ``<b></b>``, which lxml writes
``<b/>``) and no reference but ``&amp;``, ``&lt;``, ``&gt;`` in its text. Otherwise the builder
walks that element (``el``). Text beside an element outside flow (mixed content), a prefix or
``xmlns``, a shape deeper than ``_MAX_DEPTH`` or longer than ``_MAX_TAGS`` tags: no function.

The builder's globals are ``onix_shape_calls.scope()``: the helpers it calls as it runs
(that module also carries builders to the other processes of a run).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from harvester.parse.onix_shape_calls import Build, scope
from harvester.parse.onix_walk import FLAG, FLOW, PLAIN, info

__all__ = ["compile_shape"]

_TAG = re.compile(rb"(/?)([^\s/=<>\"'!?]+)((?:\s+[^\s/=<>\"'!?]+\s*=)*)\s*(/?)>(T|[ \t\n]*)")
_NAME = re.compile(rb"[^\s=]+")
_ONE = re.compile(rb" ([^\s=]+)=")
_MAX_DEPTH, _MAX_TAGS = 32, 4096


@dataclass(slots=True)
class _Node:
    """One element of a shape: its tags' indices, the class of its text and of its tail (``T``,
    whitespace or empty), ``cut`` (the length of ``/name>``) and whether its tags are plain."""

    name: str
    start: int
    attrs: bool
    single: str  # the attribute's name when it is the only one, written name="value"
    offset: int  # from "<" to that value
    empty: bool
    text: bytes
    plain: bool
    tail: bytes = b""
    end: int = -1
    cut: int = 0
    children: list[_Node] = field(default_factory=list)


def _local(name: bytes, names: list[bytes]) -> bool:
    """No prefix on the element, none but ``xml:`` on its attributes, no ``xmlns`` among them:
    the names lxml reports are then the names in the bytes."""
    if b":" in name:
        return False
    return not any(n == b"xmlns" or (b":" in n and not n.startswith(b"xml:")) for n in names)


@dataclass(frozen=True, slots=True)
class _Tag:
    """One tag of a shape, read once (tags recur across shapes: ``_read`` is cached)."""

    close: bool
    name: str
    attrs: bool
    single: str
    offset: int
    empty: bool
    text: bytes  # the class of the text after it: b"T", whitespace, or b""
    plain: bool
    cut: int  # the length of the tag with its ">": what follows a leaf's text in its part


@functools.lru_cache(maxsize=4096)
def _read(tag: bytes) -> _Tag | None:
    """A tag (``name attr=>T``) of a shape, or ``None`` if a split cannot read it."""
    m = _TAG.fullmatch(tag)
    if m is None or not _local(m.group(2), _NAME.findall(m.group(3))):
        return None
    close, name, names, empty, text = m.groups()
    plain = len(tag) - len(text) == len(close) + len(name) + len(empty) + 1
    single, offset = _single(tag, name, names, empty)
    cut = len(tag.decode()) - len(text)
    return _Tag(bool(close), name.decode(), bool(names), single, offset, bool(empty), text,
                plain and not names, cut)  # fmt: skip


def _parse(shape: bytes) -> tuple[_Node, int] | None:
    """The shape's element tree and its tag count, or ``None`` if a split cannot read it."""
    lead, *tags, last = shape.split(b"<")
    if len(tags) > _MAX_TAGS or lead.strip() or last:
        return None
    stack: list[_Node] = []
    root: _Node | None = None
    for k, raw in enumerate(tags):
        tag = _read(raw)
        if tag is None:
            return None
        if tag.close:
            node = stack.pop() if len(stack) > 1 and not (tag.attrs or tag.empty) else None
            if node is None or node.name != tag.name:
                return None
            # the part holding a leaf's text ends "<" + "/name": as long as "/name>"
            node.end, node.tail, node.cut = k, tag.text, tag.cut
            node.plain = node.plain and tag.plain
            continue
        node = _Node(tag.name, k, tag.attrs, tag.single, tag.offset, tag.empty, tag.text,
                     tag.plain)  # fmt: skip
        if stack:
            stack[-1].children.append(node)
        elif root is None:
            root = node
        else:
            return None
        if tag.empty:
            node.end, node.tail = k, tag.text
        else:
            stack.append(node)
            if len(stack) > _MAX_DEPTH:
                return None
    if root is None or stack != [root] or not root.children:
        return None
    return root, len(tags)


def _single(tag: bytes, name: bytes, names: bytes, empty: bytes) -> tuple[str, int]:
    """``(attribute, offset)`` when a start tag has one attribute written ``<name attr="v">``
    (one space, none around ``=``: ``shape_of`` cut only a value right after it), else
    ``("", 0)``."""
    m = _ONE.fullmatch(names)
    if empty or m is None or not tag.startswith(name + names + b">"):
        return "", 0
    return m.group(1).decode(), len((name + names).decode()) + 2  # "<" and the opening quote


def compile_shape(shape: bytes) -> tuple[int, Build] | None:
    """``(parts a split at ">" gives, builder)`` for products of ``shape``, or ``None``."""
    parsed = _parse(shape)
    if parsed is None or info(parsed[0].name)[0] != "Product":
        return None
    root, tags = parsed
    gen = _Gen()
    try:
        body = gen.value(root, "need(el)", PLAIN)
    except _Mixed:
        return None
    src = "def build(p, q, el, ns, stamps):\n" + "".join(f"    {s}\n" for s in gen.lines)
    src += f"    return {body}\n"
    names = scope()
    exec(compile(src, "<onix shape>", "exec"), names)  # names enter the code only as repr()
    return tags + 1, names["build"]


class _Mixed(Exception):
    """Text beside an element outside flow: mixed content, which the walk keeps as markup."""


def _markup_as_lxml(node: _Node) -> bool:
    """Whether lxml writes the elements inside ``node`` as they stand (``flow_text``)."""
    return all(
        c.plain and (c.empty or c.children or c.text) and _markup_as_lxml(c) for c in node.children
    )


class _Gen:
    """Python source for one shape: statements in document order, then one expression."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _local(self, expr: str) -> str:
        name = f"x{len(self.lines)}"
        self.lines.append(f"{name} = {expr}")
        return name

    def _own(self, node: _Node) -> list[str]:
        """Items of ``node``'s attributes for a dict display, read now (document order)."""
        if not node.single:
            return [f"**{self._local(f'tag_attrs(q[{node.start}], stamps)')}"]
        value = self._local(f"attr_value(q[{node.start}], {node.offset})")
        if node.single == "datestamp":
            self.lines.append(f"stamps.append({value})")
        return [f"{'@' + node.single!r}: {value}"]

    def _flow(self, node: _Node, el: str) -> str:
        walked = f"walk({el}, {FLOW}, ns, stamps)"
        if node.empty or not _markup_as_lxml(node):
            return self._local(walked)
        x = self._local(f"flow_text(q, {node.start}, {node.end}, {node.cut})")
        if not node.attrs:
            done = x
        elif node.single and node.single != "datestamp":  # no stamp: read in the expression
            value = f"attr_value(q[{node.start}], {node.offset})"
            done = f"{{{'@' + node.single!r}: {value}, '#text': {x}}}"
        else:  # read only if the walk is not
            done = f"{{**tag_attrs(q[{node.start}], stamps), '#text': {x}}}"
        self.lines.append(f"{x} = {walked} if {x} is None else {done}")
        return x

    def value(self, node: _Node, el: str, kind: int) -> str:
        """The expression of ``node``'s value; ``el`` reaches its element where it is walked."""
        if kind == FLOW:
            return self._flow(node, el)
        if not node.children:
            text = f"p[{node.start + 1}][:-{node.cut}]"
            if node.attrs:
                some = "None" if node.empty or not node.text else f"({text} or None)"
                own = "{" + ", ".join(self._own(node)) + "}"
                return self._local(f"with_text({own}, {some}, {kind})")
            if kind == FLAG:
                return "True" if node.text != b"T" else f"flag({text})"
            return '""' if node.empty else text
        if node.text == b"T" or any(child.tail == b"T" for child in node.children):
            raise _Mixed
        items = self._own(node) if node.attrs else []
        groups: dict[str, list[str]] = {}
        lists: set[str] = set()
        for i, child in enumerate(node.children):
            name, repeatable, ckind = info(child.name)
            groups.setdefault(name, []).append(self.value(child, f"{el}[{i}]", ckind))
            if repeatable:
                lists.add(name)
        for name, values in groups.items():
            one = len(values) == 1 and name not in lists
            items.append(f"{name!r}: " + (values[0] if one else f"[{', '.join(values)}]"))
        return "{" + ", ".join(items) + "}"
