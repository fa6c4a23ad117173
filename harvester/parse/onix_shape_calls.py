"""What a compiled product shape's builder calls as it runs, and builders carried between
processes.

``onix_shape_code.compile_shape`` writes each builder as one function whose globals are
``scope()``: the helpers here read attributes (``tag_attrs``, ``attr_value``), resolve references
(``deref_parts``) and keep flow markup as it stands (``flow_text``), and ``need`` asks for the
product's lxml element where the builder must walk one. Compiling costs ~1 ms a shape (Python's
compiler); ``code_of`` and ``load`` carry a builder to another process of the same run as its
code object, which that process loads in ~1 % of that.
"""

from __future__ import annotations

import builtins
import marshal
import re
from collections.abc import Callable
from types import FunctionType
from typing import Any

from harvester.parse.onix_walk import flag, walk, with_text

__all__ = [
    "Build",
    "NeedTree",
    "attr_value",
    "code_of",
    "deref",
    "deref_parts",
    "flow_text",
    "load",
    "need",
    "scope",
    "tag_attrs",
]

Build = Callable[[list[str], list[str], Any, "str | None", list[str]], Any]

_ATTR = re.compile(r"""\s([^\s=]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REF = re.compile(r"&(?:#x([0-9a-fA-F]+)|#([0-9]+)|(amp|lt|gt|quot|apos));")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_NOT_AS_LXML = re.compile(r"&(?!amp;|lt;|gt;)")  # a reference lxml would write as its character


def _char(m: re.Match[str]) -> str:
    if m.group(3):
        return _NAMED[m.group(3)]
    return chr(int(m.group(1), 16)) if m.group(1) else chr(int(m.group(2)))


def _char_held(m: re.Match[str]) -> str:
    char = _char(m)
    return "\0" if char == ">" else char  # NUL is no XML character: it cannot be there already


def deref(text: str) -> str:
    """``text`` with its references resolved (a well-formed document has no others)."""
    return _REF.sub(_char, text)


def deref_parts(text: str) -> list[str]:
    """``text`` split at ``>``, references resolved in each part (a ``&gt;`` does not split)."""
    plain = _REF.sub(_char_held, text)
    parts = plain.split(">")
    return [part.replace("\0", ">") for part in parts] if "\0" in plain else parts


def tag_attrs(part: str, stamps: list[str]) -> dict[str, Any]:
    """The attributes of the start tag that ends ``part``, as ``onix_walk.attrs`` gives them:
    literal tabs and newlines as spaces (XML's normalization), then references resolved."""
    out: dict[str, Any] = {}
    for name, double, single in _ATTR.findall(part, part.rindex("<") + 1):
        value = _normal(double or single)
        out["@" + name] = value
        if name == "datestamp":
            stamps.append(value)
    return out


def _normal(value: str) -> str:
    if "\t" in value or "\n" in value:
        value = value.replace("\t", " ").replace("\n", " ")
    return deref(value) if "&" in value else value


def attr_value(part: str, offset: int) -> str:
    """The value of the only attribute of the start tag that ends ``part``, written
    ``<name attr="value">``: ``offset`` characters from its ``<`` to the end, less the quote."""
    value = part[part.rindex("<") + offset : -1]
    if "&" in value or "\t" in value or "\n" in value:
        return _normal(value)
    return value


class NeedTree(Exception):
    """The builder must walk a flow element, and was given no tree (``el`` is ``None``)."""


def need(el: Any) -> Any:
    """``el``, the product's lxml element, or ``NeedTree`` when there is none."""
    if el is None:
        raise NeedTree
    return el


def flow_text(q: list[str], start: int, end: int, cut: int) -> str | None:
    """The markup between start tag ``start`` and end tag ``end`` as it stands, or ``None``
    when a reference in it would be written otherwise by lxml."""
    inner = ">".join(q[start + 1 : end + 1])[:-cut]
    if "&" in inner and _NOT_AS_LXML.search(inner):
        return None
    return inner


def code_of(build: Build) -> bytes:
    """The code of a builder ``onix_shape_code.compile_shape`` made, as bytes (``marshal``, as
    ``.pyc`` files hold code) for another process of the same run to ``load``."""
    return marshal.dumps(build.__code__)


def load(code: bytes) -> Build:
    """The builder whose code ``code_of`` gave, in the scope ``compile_shape`` gives it.

    ``code`` must come from ``code_of`` in a process running this same code (a pool worker of
    the run): it is executed as it stands.
    """
    built: Build = FunctionType(marshal.loads(code), _LOADED)
    return built


def scope() -> dict[str, Any]:
    """The names a builder's code reads (its globals)."""
    return {
        "attr_value": attr_value, "flag": flag, "flow_text": flow_text, "tag_attrs": tag_attrs,
        "need": need, "walk": walk, "with_text": with_text,
    }  # fmt: skip


_LOADED = {**scope(), "__builtins__": builtins}  # shared by the loaded builders: read only
