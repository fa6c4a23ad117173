"""Generate ``harvester/parse/onix_tags.py`` from the ONIX 3.1 XSDs bundled with onixcheck.

Run from the repository root::

    python -m tests.gen_onix_tags

The module is rewritten and the size of each table is printed. ``tests/test_onix_tags.py`` checks
that the committed module equals what this script produces from the installed schemas.

Where each table comes from:

* ``SHORT_TO_REF`` pairs the ``xs:element/@name`` declarations of the short-tag and reference
  XSDs, which EDItEUR writes in the same order. Each pair is checked against the ``shortname``
  value that the reference XSD fixes for the element, so a misalignment fails loudly.
* ``REPEATABLE`` comes from the content models of the reference XSD: for every element, how often
  each child may occur, following ``ref=`` element references, named groups, nested sequences and
  choices (with their ``maxOccurs``) and ``complexContent`` extensions. A name that may occur
  twice or more under any parent is repeatable. This also catches a name that appears twice in one
  sequence, such as ``AudienceRangeValue`` in ``AudienceRange``.
* ``FLAGS`` are elements whose type has no content at all (attributes only).
* ``FLOW`` are elements with mixed content, the ones that extend the XHTML ``Flow`` type.
"""

from __future__ import annotations

import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import NamedTuple

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
NS = {"xs": XS}
PARTICLES = frozenset({"element", "sequence", "choice", "all", "group"})
REFERENCE_XSD = "ONIX_BookProduct_3.1_reference.xsd"
SHORT_XSD = "ONIX_BookProduct_3.1_short.xsd"
TARGET = Path(__file__).resolve().parent.parent / "harvester" / "parse" / "onix_tags.py"
WIDTH = 100
INDENT = "    "

Counts = dict[str, int]


def schema_dir() -> Traversable:
    """The folder of ONIX 3.1 XSDs inside the installed onixcheck package."""
    return files("onixcheck").joinpath("schema", "xsd3.1")


def load(name: str) -> etree._Element:
    """Parse one bundled XSD and return its ``xs:schema`` root."""
    with schema_dir().joinpath(name).open("rb") as f:
        return etree.parse(f).getroot()


def local(el: etree._Element) -> str:
    """The local name of a schema element, e.g. ``sequence`` for ``xs:sequence``."""
    return etree.QName(el).localname


def xs_children(el: etree._Element) -> list[etree._Element]:
    """The XML Schema child elements of ``el``, comments left out."""
    return list(el.iterchildren(f"{{{XS}}}*"))


def revision(root: etree._Element) -> str:
    """Release, revision, revision date and ``@version`` of a schema, from its header comment."""
    head = root.getprevious()
    text = (head.text or "") if head is not None else ""
    parts = []
    for label, pattern in (
        ("Release", r"Release (\d[\d.]*)"),
        ("Revision", r"Revision (\d+)"),
        ("revised", r"Revised: (\d{4}-\d{2}-\d{2})"),
    ):
        found = re.search(pattern, text)
        if found is None:
            raise ValueError(f"no {label!r} in the schema header comment")
        parts.append(f"{label} {found.group(1)}")
    return ", ".join(parts) + f", schema version {root.get('version')}"


def shortname(root: etree._Element, decl: etree._Element) -> str:
    """The short tag that the reference XSD fixes for a declaration (its ``shortname`` value).

    A declaration typed by a named complex type takes the value from that type, or from the type
    it extends.
    """
    path = ".//xs:attribute[@name='shortname']//xs:enumeration"
    values = [str(el.get("value")) for el in decl.iterfind(path, NS)]
    if len(values) == 1:
        return values[0]
    base = decl.get("type")
    extension = decl.find("xs:complexContent/xs:extension", NS)
    if base is None and extension is not None:
        base = extension.get("base")
    if not values and base is not None:
        return shortname(root, named_type(root, base))
    raise ValueError(f"{decl.get('name')}: {len(values)} shortname values")


def tag_pairs(ref: etree._Element, short: etree._Element) -> dict[str, str]:
    """Every short tag mapped to its reference name, with the alignment of the two XSDs checked."""
    ref_decls = [el for el in ref.iter(f"{{{XS}}}element") if el.get("name")]
    short_names = [str(el.get("name")) for el in short.iter(f"{{{XS}}}element") if el.get("name")]
    if len(ref_decls) != len(short_names):
        raise ValueError(f"{len(ref_decls)} reference vs {len(short_names)} short declarations")
    pairs: dict[str, str] = {}
    for decl, short_tag in zip(ref_decls, short_names, strict=True):
        name = str(decl.get("name"))
        fixed = shortname(ref, decl)
        if fixed != short_tag:
            raise ValueError(f"{name}: short XSD says {short_tag}, reference says {fixed}")
        if pairs.get(short_tag, name) != name:
            raise ValueError(f"{short_tag} names both {pairs[short_tag]} and {name}")
        pairs[short_tag] = name
    if len(set(pairs.values())) != len(pairs):
        raise ValueError("two short tags share a reference name")
    return pairs


def named_type(root: etree._Element, name: str) -> etree._Element:
    """The top-level ``xs:complexType`` called ``name``."""
    for el in root.iterchildren(f"{{{XS}}}complexType"):
        if el.get("name") == name:
            return el
    raise KeyError(name)


def named_group(root: etree._Element, name: str) -> etree._Element:
    """The top-level ``xs:group`` called ``name``."""
    for el in root.iterchildren(f"{{{XS}}}group"):
        if el.get("name") == name:
            return el
    raise KeyError(name)


def max_occurs(particle: etree._Element) -> int:
    """A particle's ``maxOccurs`` capped at 2, since all that matters is "more than once"."""
    value = particle.get("maxOccurs", "1")
    return 2 if value == "unbounded" else min(int(value), 2)


def merge(into: Counts, other: Counts, *, choice: bool) -> None:
    """Combine child counts: the larger one for choice branches, the sum for sequence members."""
    for name, n in other.items():
        into[name] = max(into.get(name, 0), n) if choice else min(into.get(name, 0) + n, 2)


def occurrences(root: etree._Element, particle: etree._Element) -> Counts:
    """How often each element name may occur in a particle (capped at 2)."""
    kind = local(particle)
    counts: Counts = {}
    if kind == "element":
        counts[str(particle.get("ref") or particle.get("name"))] = 1
    else:
        body = named_group(root, str(particle.get("ref"))) if kind == "group" else particle
        for child in xs_children(body):
            if local(child) in PARTICLES:
                merge(counts, occurrences(root, child), choice=local(body) == "choice")
    times = max_occurs(particle)
    return {name: min(n * times, 2) for name, n in counts.items()}


def content_model(root: etree._Element, ctype: etree._Element) -> Counts:
    """How often each child element name may occur in a complex type, extensions included."""
    counts: Counts = {}
    for child in xs_children(ctype):
        if local(child) in PARTICLES:
            merge(counts, occurrences(root, child), choice=False)
        elif local(child) == "complexContent":
            for derivation in xs_children(child):
                base = str(derivation.get("base"))
                # Flow (in the XHTML subset XSD) only brings XHTML children, never ONIX ones.
                if local(derivation) == "extension" and base != "Flow":
                    merge(counts, content_model(root, named_type(root, base)), choice=False)
                merge(counts, content_model(root, derivation), choice=False)
    return counts


def declarations(root: etree._Element) -> list[tuple[str, etree._Element]]:
    """Every element declaration (top-level and local) with its complex type, if it has one."""
    out = []
    for decl in root.iter(f"{{{XS}}}element"):
        name = decl.get("name")
        if name is None:
            continue
        type_name = decl.get("type")
        ctype = decl.find("xs:complexType", NS)
        if type_name is not None:
            ctype = named_type(root, type_name)
        if ctype is not None:
            out.append((name, ctype))
    return out


def repeatable(root: etree._Element) -> frozenset[str]:
    """Names that may occur more than once under at least one parent."""
    names: set[str] = set()
    for _, ctype in declarations(root):
        names.update(name for name, n in content_model(root, ctype).items() if n > 1)
    return frozenset(names)


def flags(root: etree._Element) -> frozenset[str]:
    """Elements whose type has no content: no text and no children, attributes only."""
    content = {"attribute", "attributeGroup", "anyAttribute", "annotation"}
    return frozenset(
        name
        for name, ctype in declarations(root)
        if ctype.get("mixed") != "true" and all(local(c) in content for c in xs_children(ctype))
    )


def flow(root: etree._Element) -> frozenset[str]:
    """Elements with mixed (XHTML ``Flow``) content."""
    path = "xs:complexContent/xs:extension[@base='Flow']"
    return frozenset(
        name
        for name, ctype in declarations(root)
        if ctype.get("mixed") == "true" or ctype.find(path, NS) is not None
    )


def pack(items: list[str], indent: str = INDENT) -> list[str]:
    """Lay out literal items (each ending with a comma) greedily in lines of at most WIDTH chars."""
    lines: list[str] = []
    line = ""
    for item in items:
        if line and len(indent) + len(line) + 1 + len(item) > WIDTH:
            lines.append(indent + line)
            line = item
        else:
            line = f"{line} {item}" if line else item
    if line:
        lines.append(indent + line)
    return lines


def dict_literal(name: str, mapping: dict[str, str]) -> list[str]:
    """A densely packed ``name: dict[str, str] = {...}`` statement, keys sorted."""
    items = [f'"{k}": "{mapping[k]}",' for k in sorted(mapping)]
    return [f"{name}: dict[str, str] = {{", *pack(items), "}"]


def set_literal(name: str, names: frozenset[str]) -> list[str]:
    """A densely packed ``name: frozenset[str] = frozenset({...})`` statement, names sorted."""
    items = [f'"{n}",' for n in sorted(names)]
    return [f"{name}: frozenset[str] = frozenset({{", *pack(items), "})"]


class Tables(NamedTuple):
    """The tables written to the module, and the schema revision they come from."""

    version: str
    short_to_ref: dict[str, str]
    repeatable: frozenset[str]
    flags: frozenset[str]
    flow: frozenset[str]


def build() -> Tables:
    """Derive every table from the installed reference and short-tag XSDs."""
    ref, short = load(REFERENCE_XSD), load(SHORT_XSD)
    version = revision(ref)
    if revision(short) != version:
        raise ValueError(f"reference XSD is {version}, short XSD is {revision(short)}")
    return Tables(version, tag_pairs(ref, short), repeatable(ref), flags(ref), flow(ref))


def render(tables: Tables) -> str:
    """The text of ``harvester/parse/onix_tags.py`` for the given tables."""
    inverse = {name: tag for tag, name in tables.short_to_ref.items()}
    lines = [
        "# Generated by `python -m tests.gen_onix_tags` from the ONIX for Books 3.1 reference and",
        f"# short-tag XSDs ({tables.version}). Do not edit.",
        '"""ONIX for Books 3.1 element tables derived from the EDItEUR XSDs.',
        "",
        "``SHORT_TO_REF`` maps every short tag (``a001``, ``product``) to its reference name",
        "(``RecordReference``, ``Product``) and ``REF_TO_SHORT`` is its inverse.",
        "``REPEATABLE`` holds the reference names that may occur more than once under at least",
        "one parent. ``FLAGS`` are the empty flag elements and ``FLOW`` the elements whose",
        "content is XHTML flow text.",
        '"""',
        "",
        '__all__ = ["FLAGS", "FLOW", "REF_TO_SHORT", "REPEATABLE", "SHORT_TO_REF"]',
        "",
        "# fmt: off",
        *dict_literal("SHORT_TO_REF", tables.short_to_ref),
        "",
        *dict_literal("REF_TO_SHORT", inverse),
        "",
        *set_literal("REPEATABLE", tables.repeatable),
        "",
        *set_literal("FLAGS", tables.flags),
        "",
        *set_literal("FLOW", tables.flow),
        "# fmt: on",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Rewrite ``harvester/parse/onix_tags.py`` and print the size of each table."""
    tables = build()
    TARGET.write_text(render(tables), encoding="utf-8")
    print(f"ONIX 3.1 XSDs: {tables.version}")
    print(f"SHORT_TO_REF / REF_TO_SHORT: {len(tables.short_to_ref)} pairs")
    print(f"REPEATABLE: {len(tables.repeatable)}")
    print(f"FLAGS: {len(tables.flags)}")
    print(f"FLOW: {len(tables.flow)}")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
