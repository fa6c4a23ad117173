"""The general walk: one parsed ONIX element to its ``onix`` tree, by the rules in ``onix.py``.

``walk`` visits every element of the tree lxml built; ``onix_shapes`` reaches the same result
without the visit for products whose markup has a shape seen before, and falls back here for
the rest. ``info`` resolves a tag once: its reference name, whether that name is a list, and
its kind (``PLAIN``, ``FLAG``: an empty flag is ``true``, ``FLOW``: inner markup as a string).
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from harvester.parse.onix_tags import FLAGS, REPEATABLE, SHORT_TO_REF
from harvester.parse.onix_tags import FLOW as FLOW_NAMES

__all__ = ["FLAG", "FLOW", "INFO", "PLAIN", "attrs", "flag", "flow", "info", "walk", "with_text"]

_KNOWN = frozenset(SHORT_TO_REF.values())
PLAIN, FLAG, FLOW = 0, 1, 2
#: tag -> (reference name, always a list, kind); filled by ``info``
INFO: dict[str, tuple[str, bool, int]] = {}


def info(tag: str) -> tuple[str, bool, int]:
    """``(reference name, always a list, kind)`` of an lxml tag (``{namespace}local`` or bare)."""
    found = INFO.get(tag)
    if found is None:
        local = tag.rpartition("}")[2]
        name = SHORT_TO_REF.get(local, local)
        kind = FLAG if name in FLAGS else FLOW if name in FLOW_NAMES else PLAIN
        found = INFO[tag] = (name, name in REPEATABLE or name not in _KNOWN, kind)
    return found


def attrs(items: list[tuple[str, str]], stamps: list[str]) -> dict[str, Any]:
    """Attributes as ``@name`` keys (``xml:`` kept); each ``datestamp`` value is added to
    ``stamps``, in the order met."""
    out: dict[str, Any] = {}
    for key, value in items:
        if key[0] == "{":
            ns, _, local = key[1:].partition("}")
            key = "xml:" + local if ns == "http://www.w3.org/XML/1998/namespace" else local
        out["@" + key] = value
        if key == "datestamp":
            stamps.append(value)
    return out


def flow(el: Any, ns: str | None) -> str:
    """An element's inner markup as lxml serializes it, without ``xmlns="ns"`` declarations."""
    markup: str = etree.tostring(el, encoding="unicode", with_tail=False)
    if markup.endswith("/>") and len(el) == 0 and not el.text:
        return ""
    inner = markup[markup.index(">") + 1 : markup.rindex("</")]
    return inner.replace(f' xmlns="{ns}"', "") if ns else inner


def with_text(out: dict[str, Any], text: str | None, kind: int) -> dict[str, Any]:
    """An element with attributes (``out``) and no children: ``#text`` added if it has text (a
    flag's only if that text is not blank)."""
    if text is not None and (kind != FLAG or text.strip()):
        out["#text"] = text
    return out


def flag(text: str) -> str | bool:
    """A flag element's value from its text: ``True`` when blank, else the text."""
    return text if text.strip() else True


def walk(el: Any, kind: int, ns: str | None, stamps: list[str]) -> Any:
    """``el`` (of ``kind``) as its ``onix`` value: a string, ``True``, a dict of its children
    (lists where ``info`` says so or a name repeats) or, for flow and mixed content, markup."""
    items = el.items()
    if kind == FLOW:
        inner = flow(el, ns)
        if items:
            out = attrs(items, stamps)
            out["#text"] = inner
            return out
        return inner
    text = el.text
    if len(el) == 0:
        if items:
            return with_text(attrs(items, stamps), text, kind)
        if kind == FLAG and (text is None or not text.strip()):
            return True
        return "" if text is None else text
    out = attrs(items, stamps) if items else {}
    mixed = text is not None and not text.isspace()
    table = INFO
    for child in el:
        tag = child.tag
        name, repeatable, ckind = table.get(tag) or info(tag)
        # The common case inline (no call): a plain element with text only.
        if ckind == PLAIN and not len(child) and not child.items():
            value = child.text
            if value is None:
                value = ""
        else:
            value = walk(child, ckind, ns, stamps)
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
        return walk(el, FLOW, ns, stamps)  # mixed content: kept as markup
    return out
