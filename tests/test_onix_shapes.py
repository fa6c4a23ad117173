"""Compiled product shapes give exactly what the walk gives, whatever the markup's details."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.parse import onix, onix_shapes
from harvester.parse.onix import Converted, ProductError, convert_batch, read_header
from harvester.parse.onix_pool import OnixConverter
from harvester.parse.onix_shapes import Shapes, Shipped, shape_of
from harvester.parse.onix_split import Batch, OnixSplitter, Prologue
from harvester.sim.books import BookCatalogue
from tests.test_parse_onix import short

NS31 = "http://ns.editeur.org/onix/3.1/reference"
ROOT = f'<ONIXMessage xmlns="{NS31}" release="3.1">'.encode()
SRC = read_header(
    ROOT + b"<Header><SentDateTime>20250204T1000Z</SentDateTime></Header></ONIXMessage>"
)


SHORT_ROOT = b'<ONIXmessage release="3.1">'
SHORT_SRC = read_header(SHORT_ROOT + b"<header><x307>20250204T1000Z</x307></header></ONIXmessage>")


def convert(products: list[str], shapes: Shapes | None, *, tags: str = "") -> list[Converted]:
    """``convert_batch`` of the products as one batch, as a worker gets it (``tags="short"``:
    a short-tag message in no namespace)."""
    data = "\n".join(products).encode() + b"\n"
    if tags == "short":
        return convert_batch(SHORT_ROOT, b"ONIXmessage", data, SHORT_SRC, shapes)
    return convert_batch(ROOT, b"ONIXMessage", data, SRC, shapes)


def same_as_walk(products: list[str], rounds: int = 3) -> Shapes:
    """Assert that a fresh ``Shapes`` converts the batch as the walk does, ``rounds`` times (a
    shape is compiled the second time it is seen, then built from)."""
    shapes, walked = Shapes(), convert(products, None)
    for _ in range(rounds):
        assert convert(products, shapes) == walked
    return shapes


_CHUNK = st.sampled_from([
    "a", "Ø æ", "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#233;", "&#x3E;", "&#62;",
    "&#10;", "&#9;", ">", " ", "\n", "\t", "\u00a0", '"', "'", "x=y", "/", "T",
])  # fmt: skip
_TEXT = st.lists(_CHUNK, max_size=4).map("".join)
_SPACE = st.sampled_from(["", "", "\n", "\n  ", " \t"])


@st.composite
def _attrs(draw: Any, names: tuple[str, ...] = ("textformat", "datestamp", "xml:lang")) -> str:
    """Zero to two attributes, quoted and spaced in every way XML allows."""
    out = []
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        value = draw(_TEXT).replace("<", "&lt;")
        quote = draw(st.sampled_from(['"', "'"]))
        value = value.replace(quote, "&quot;" if quote == '"' else "&apos;")
        eq = draw(st.sampled_from(["=", "=", " = ", "= "]))
        space = draw(st.sampled_from([" ", " ", "  ", "\n"]))
        out.append(f"{space}{name}{eq}{quote}{value}{quote}")
    return "".join(out)


@st.composite
def _leaf(draw: Any) -> str:
    """A leaf, a flag in each of its forms, or an unknown element, with or without attributes."""
    name = draw(st.sampled_from(["KeyNames", "IDValue", "NoPrefix", "Unknown", "Date"]))
    attrs = draw(_attrs()) if draw(st.booleans()) else ""
    form = draw(st.sampled_from(["text", "text", "empty", "pair"]))
    if form == "empty":
        return f"<{name}{attrs}{draw(st.sampled_from(['', ' ']))}/>"
    return f"<{name}{attrs}>{'' if form == 'pair' else draw(_TEXT)}</{name}>"


@st.composite
def _flow(draw: Any) -> str:
    """A flow element whose markup lxml writes as it stands, or otherwise."""
    inner = draw(st.lists(st.sampled_from([
        "<p>{t}</p>", "<br/>", "<br />", "<b></b>", "{t}", '<i class="x">{t}</i>',
        "<p>{t}<b>{t}</b>{t}</p>", '<p xmlns="urn:x">{t}</p>', "<p >{t}</p >",
    ]), max_size=3))  # fmt: skip
    body = "".join(part.replace("{t}", draw(_TEXT)) for part in inner)
    attrs = draw(_attrs(("textformat", "datestamp"))) if draw(st.booleans()) else ""
    return f"<Text{attrs}>{body}</Text>"


@st.composite
def _product(draw: Any, serial: int) -> str:
    """A product: leaves, flags, flow, composites, repeats and, now and then, what no split
    may read (mixed content, a comment, CDATA, a processing instruction)."""
    sp = draw(_SPACE)
    parts = [f"<RecordReference>r{serial}</RecordReference>"]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["leaf", "composite", "flow", "odd"]))
        if kind == "leaf":
            parts.append(draw(_leaf()))
        elif kind == "flow":
            parts.append(f"<TextContent>{sp}{draw(_flow())}{sp}</TextContent>")
        elif kind == "composite":
            kids = sp.join(draw(st.lists(_leaf(), min_size=1, max_size=3)))
            name = draw(st.sampled_from(["Contributor", "Publisher", "Collection"]))
            parts.append(f"<{name}{draw(_attrs())}>{sp}{kids}{sp}</{name}>")
        else:
            parts.append(draw(st.sampled_from([
                "<Mixed>t<b>u</b>v</Mixed>", "<KeyNames>a<!-- c -->b</KeyNames>",
                "<KeyNames><![CDATA[<x>&]]></KeyNames>", "<KeyNames>a<?pi x?></KeyNames>",
                "<Contributor>t<KeyNames>k</KeyNames></Contributor>",
            ])))  # fmt: skip
    attrs = draw(_attrs(("datestamp",))) if draw(st.booleans()) else ""
    return f"<Product{attrs}>{sp}{sp.join(parts)}{sp}</Product>"


@settings(max_examples=300, deadline=None)
@given(data=st.data(), copies=st.integers(1, 3))
def test_generated_products_convert_as_the_walk_does(data: Any, copies: int) -> None:
    """Random markup (spacing, quoting, references, flags, flow, odd nodes) equals the walk."""
    products = [data.draw(_product(i)) for i in range(3)]
    same_as_walk([p.replace("r0<", f"r0c{c}<") for c in range(copies) for p in products])


@settings(max_examples=100, deadline=None)
@given(texts=st.lists(_TEXT, min_size=4, max_size=4))
def test_one_shape_with_other_text_is_built_as_walked(texts: list[str]) -> None:
    """A compiled shape filled with any text (references, '>', blanks) gives the walk's tree."""
    shape = (
        '<Product datestamp="{0}"><RecordReference>r{0}</RecordReference><NoPrefix>{1}'
        '</NoPrefix><Contributor><KeyNames>{2}</KeyNames></Contributor><Date dateformat="{3}">'
        '{3}</Date><Text textformat="05"><p>{1}</p>{2}<br/></Text></Product>'
    )
    fixed = shape.format("r", "a", "b", "00")
    products = [fixed, fixed, shape.format(*(t.replace('"', "&quot;") for t in texts))]
    assert same_as_walk(products, rounds=3).built >= 4  # the fixed two in rounds 2 and 3


def test_simulator_catalogue_is_built_not_walked() -> None:
    """The simulator's products convert as walked, and once seen twice every shape is built."""
    books = BookCatalogue(600, 5)
    products = [books.product(pos) for pos in range(600)]
    shapes = same_as_walk(products, rounds=3)  # a shape seen once in round 1 is built in 3
    built = shapes.built
    assert convert(products, shapes) == convert(products, None)
    assert shapes.built == built + 600


_GOOD = "<Product><RecordReference>r</RecordReference><KeyNames>k</KeyNames></Product>"


@pytest.mark.parametrize(
    ("bad", "why"),
    [(_GOOD.replace(">k<", ">&nbsp;<"), "not well-formed"),
     (_GOOD.replace("</KeyNames>", "</Keynames>"), "not well-formed"),
     (_GOOD.replace("<RecordReference>r</RecordReference>", ""), "without a RecordReference"),
     (_GOOD.replace("</Product>", f"{_GOOD}</Product>"), "inside another"),
     ("<Other/>", "unexpected <Other>")],
    ids=["entity", "mismatch", "no-reference", "nested", "stranger"],
)  # fmt: skip
def test_a_bad_batch_after_a_built_one_is_refused_as_before(bad: str, why: str) -> None:
    """With compiled shapes the same batches are refused, with the walk's messages."""
    shapes = same_as_walk([_GOOD, _GOOD])
    assert shapes.built == 4  # compiled on the second product: both built in rounds 2 and 3
    for tried in (shapes, None):
        with pytest.raises(ProductError, match=why):
            convert([_GOOD, bad], tried)


def test_a_catalogue_without_repeats_stops_computing_shapes() -> None:
    """When too few products hit a compiled shape, the next batches are walked outright."""
    shapes = Shapes()
    unique = [
        f"<Product><RecordReference>r{i}</RecordReference>"
        + "".join(f"<Unknown{j}>x</Unknown{j}>" for j in range(i % 40 + 1))
        + f"<Other{i}>y</Other{i}></Product>"
        for i in range(1024)
    ]
    assert convert(unique, shapes) == convert(unique, None)
    assert shapes.pieces(b"<Product></Product>", b"</Product>") is None


def test_short_tags_convert_as_the_walk_does() -> None:
    """Short-tag products (``<product>``, ``<a001>``) are built as walked once compiled."""
    books = BookCatalogue(200, 7)
    products = [short(books.product(pos)) for pos in range(200)] * 2
    shapes = Shapes()
    walked = convert(products, None, tags="short")
    assert walked[0][0].startswith("dk.dbk.") and len(walked) == 400
    assert convert(products, shapes, tags="short") == walked
    assert convert(products, shapes, tags="short") == walked
    assert shapes.built >= 400


def test_a_large_product_is_walked_and_never_kept() -> None:
    """A product over 256 KB converts as walked and is never compiled, however often seen."""
    big = _GOOD.replace(">k<", ">" + "k" * (300 << 10) + "<")
    shapes = same_as_walk([big, big, big])
    assert shapes.built == 0


def test_a_batch_over_the_part_size_converts_as_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 2 MB batch cut into 64 KB parts gives the records of the batch converted whole."""
    books = BookCatalogue(700, 3)
    products = [books.product(pos) for pos in range(700)]
    data = "\n".join(products).encode() + b"\n"
    parts = list(onix._parts(data, b"</Product>"))
    assert len(parts) >= 30 and b"".join(parts) == data
    assert all(p.startswith(b"<Product") and p.rstrip().endswith(b"</Product>") for p in parts)
    in_parts = convert(products, Shapes())
    monkeypatch.setattr(onix, "_PART_BYTES", 1 << 30)
    assert convert(products, Shapes()) == in_parts
    refs = re.findall(r"<RecordReference>([^<]*)</RecordReference>", "".join(products))
    assert [r[0] for r in in_parts] == refs and len(refs) == 700


def test_parts_are_cut_after_end_tags_never_in_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts end after an end tag and the blanks after it; a comment keeps the batch whole."""
    monkeypatch.setattr(onix, "_PART_BYTES", 10)
    end = b"</Product>"
    data = b"<Product>a</Product>\n<Product>b</Product>\n <Product>c</Product>\n"
    assert list(onix._parts(data, end)) == [
        b"<Product>a</Product>\n",
        b"<Product>b</Product>\n ",
        b"<Product>c</Product>\n",
    ]
    commented = b"<Product>a<!-- </Product> --></Product>\n<Product>b</Product>"
    assert list(onix._parts(commented, end)) == [commented]
    assert list(onix._parts(b"<Product>" + b"x" * 20, end)) == [b"<Product>" + b"x" * 20]
    with pytest.raises(ProductError, match="not well-formed"):
        convert([_GOOD, _GOOD.replace("</KeyNames>", "</Keynames>"), _GOOD], Shapes())


def _refuse_compile(shape: bytes) -> None:
    raise AssertionError("a shape was compiled")


def _shape(product: str) -> bytes:
    """The shape of a product as a batch's pieces give it (up to its end tag)."""
    return shape_of(product.encode().rstrip().removesuffix(b"</Product>"))


def test_adopted_shapes_build_at_first_sight_without_a_compile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Shapes one cache compiled, handed to another, build there at once, as walked, no compile."""
    books = BookCatalogue(40, 5)
    declined = '<Product><RecordReference>r</RecordReference><x:N xmlns:x="u">n</x:N></Product>'
    products = [books.product(pos) for pos in range(40)] * 2 + [declined, declined]
    first = same_as_walk(products, rounds=1)  # each shape compiled at its second sight
    shipped = first.handoff()
    assert set(shipped) == {_shape(p) for p in products} and len(shipped) > 10
    assert shipped[_shape(declined)] == (0, None) and first.handoff() == {}
    assert first.compiles == len(shipped)  # each shape compiled once, handed off once
    monkeypatch.setattr(onix_shapes, "compile_shape", _refuse_compile)
    other = Shapes()
    other.adopt(shipped)
    assert convert(products, other) == convert(products, None)
    assert other.built == 80 and other.handoff() == {}  # adopted shapes are not handed on


async def _through_the_pool(
    products: list[str], shapes: Shapes, monkeypatch: pytest.MonkeyPatch
) -> list[Shipped]:
    """The products as one batch through ``OnixConverter(2)`` after two small ones (converted
    here), ``shapes`` as this process's: what it adopted from the worker."""
    adopted: list[Shipped] = []
    monkeypatch.setattr(shapes, "adopt", adopted.append)
    prologue = next(p for p in OnixSplitter().feed(ROOT + b"<Header/>" + _GOOD.encode()))
    assert isinstance(prologue, Prologue)
    first = [Batch(_GOOD.encode(), 1)] * 2
    batch = Batch("".join(products).encode(), len(products))
    async with OnixConverter(2, shapes) as conv:
        here = [conv.submit(prologue, SRC, b) for b in first]  # the first two: converted here
        fut = conv.submit(prologue, SRC, batch)
        assert [f.done() for f in here] == [True, True] and not fut.done()  # then the worker
        assert await conv.result(fut, label="t") == convert(products, None)
    return adopted


async def test_a_worker_hands_back_the_shapes_it_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """workers = 2: the shapes the worker compiled for a batch come back here with its records."""
    books = BookCatalogue(30, 6)
    products = [books.product(pos) for pos in range(30)] * 3
    (adopted,) = await _through_the_pool(products, Shapes(), monkeypatch)
    assert set(adopted) == {_shape(p) for p in products}
    assert all(code is not None for _, code in adopted.values())


async def test_a_worker_compiles_none_of_the_shapes_sent_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """workers = 2: shapes compiled here go with the batch; the worker compiles none again."""
    books = BookCatalogue(30, 6)
    products = [books.product(pos) for pos in range(30)] * 3
    shapes = same_as_walk(products, rounds=1)
    assert await _through_the_pool(products, shapes, monkeypatch) == []
