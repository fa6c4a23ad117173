"""ONIX → JSON: the splitter, the converter, hostile input, chunking and the round trip."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from harvester.errors import BodyTooLarge, MalformedBody
from harvester.parse.onix import ProductError, convert_batch, iso, read_header
from harvester.parse.onix_split import Batch, OnixSplitter, Prologue
from harvester.parse.onix_tags import REF_TO_SHORT
from harvester.parse.onix_xml import to_xml
from harvester.sim.books import BookCatalogue

NS31 = "http://ns.editeur.org/onix/3.1/reference"
NS30 = "http://ns.editeur.org/onix/3.0/reference"
PRODUCT = (
    '<Product datestamp="20250204T0930Z"><RecordReference>dk.test.1</RecordReference>'
    "<NotificationType>05</NotificationType>"
    "<ProductIdentifier><ProductIDType>03</ProductIDType><IDValue>9788702152098</IDValue>"
    "</ProductIdentifier><DescriptiveDetail><ProductComposition>00</ProductComposition>"
    "<ProductForm>BC</ProductForm><TitleDetail><TitleType>01</TitleType><TitleElement>"
    "<TitleElementLevel>01</TitleElementLevel><TitlePrefix>The</TitlePrefix>"
    "<TitleWithoutPrefix>Sea &amp; Sky</TitleWithoutPrefix><Subtitle>A tale</Subtitle>"
    "</TitleElement></TitleDetail><Contributor><ContributorRole>A01</ContributorRole>"
    "<NamesBeforeKey>Karen</NamesBeforeKey><KeyNames>Blixen</KeyNames>"
    '<BiographicalNote textformat="05"><p>Born <b>1885</b>.</p></BiographicalNote>'
    "</Contributor><Language><LanguageRole>01</LanguageRole><LanguageCode>dan</LanguageCode>"
    "</Language></DescriptiveDetail><PublishingDetail><Publisher>"
    "<PublishingRole>01</PublishingRole><PublisherName>Gyldendal</PublisherName></Publisher>"
    "<PublishingStatus>04</PublishingStatus><PublishingDate>"
    '<PublishingDateRole>01</PublishingDateRole><Date dateformat="00">20240131</Date>'
    "</PublishingDate></PublishingDetail><ProductSupply><SupplyDetail><Supplier>"
    "<SupplierRole>01</SupplierRole></Supplier><ProductAvailability>40</ProductAvailability>"
    "<Price><PriceType>02</PriceType><PriceAmount>0199.50</PriceAmount>"
    "<CurrencyCode>DKK</CurrencyCode><Territory><CountriesIncluded>DK</CountriesIncluded>"
    "</Territory></Price></SupplyDetail></ProductSupply></Product>"
)


def message(products: str, *, ns: str | None = NS31, root: str = "ONIXMessage") -> bytes:
    xmlns = f' xmlns="{ns}"' if ns else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}{xmlns} release="3.1">'
        "<Header><Sender><SenderName>DBK</SenderName></Sender>"
        f"<SentDateTime>20250204T1000Z</SentDateTime></Header>\n{products}\n</{root}>\n"
    ).encode()


def short(xml: str) -> str:
    """The same products with short tags."""
    for ref, tag in sorted(REF_TO_SHORT.items(), key=lambda kv: -len(kv[0])):
        xml = xml.replace(f"<{ref}>", f"<{tag}>").replace(f"</{ref}>", f"</{tag}>")
        xml = xml.replace(f"<{ref} ", f"<{tag} ")
    return xml


def records(body: bytes, chunk: int | list[int] = 65536) -> list[dict[str, Any]]:
    """Every record the splitter and converter make of ``body`` fed in the given chunk sizes."""
    sizes = chunk if isinstance(chunk, list) else [chunk]
    splitter = OnixSplitter(batch_bytes=2000)
    pieces: list[Prologue | Batch] = []
    pos, k = 0, 0
    while pos < len(body):
        n = max(1, sizes[k % len(sizes)])
        pieces += splitter.feed(body[pos : pos + n])
        pos, k = pos + n, k + 1
    pieces += splitter.close()
    out: list[dict[str, Any]] = []
    prologue = None
    for piece in pieces:
        if isinstance(piece, Prologue):
            prologue = piece
        else:
            assert prologue is not None
            src = read_header(prologue.document)
            out += [orjson.loads(line) for _, line, _ in convert_batch(
                prologue.root_open, prologue.root_tag, piece.data, src)]  # fmt: skip
    return out


def test_derived_fields_follow_the_documented_rules() -> None:
    """One literal product gives exactly the documented envelope."""
    (rec,) = records(message(PRODUCT))
    onix = rec.pop("onix")
    assert rec == {
        "record_reference": "dk.test.1", "isbn13": "9788702152098", "gtin13": "9788702152098",
        "notification_type": "05", "deleted": True, "title": "The Sea & Sky",
        "subtitle": "A tale", "contributors": [{"role": "A01", "name": "Karen Blixen"}],
        "publisher": "Gyldendal", "imprint": None, "publishing_status": "04",
        "publication_date": "2024-01-31", "language": "dan", "product_form": "BC",
        "prices": [{"type": "02", "amount": "0199.50", "currency": "DKK", "countries": "DK"}],
        "updated": "2025-02-04T09:30:00Z", "updated_source": "datestamp",
        "_src": {"release": "3.1", "tags": "reference", "ns": NS31},
    }  # fmt: skip
    assert onix["@datestamp"] == "20250204T0930Z"
    assert onix["ProductIdentifier"] == [{"ProductIDType": "03", "IDValue": "9788702152098"}]
    contributor = onix["DescriptiveDetail"]["Contributor"][0]
    assert contributor["ContributorRole"] == ["A01"]
    assert contributor["BiographicalNote"] == [
        {"@textformat": "05", "#text": "<p>Born <b>1885</b>.</p>"}
    ]
    assert onix["DescriptiveDetail"]["TitleDetail"][0]["TitleElement"][0]["TitlePrefix"] == "The"


@pytest.mark.parametrize(
    ("ns", "tags"), [(NS31, "reference"), (NS30, "reference"), (None, "reference"), (NS31, "short")]
)
def test_namespaces_and_tag_styles_give_the_same_tree(ns: str | None, tags: str) -> None:
    """3.1, 3.0 and no namespace, reference and short tags: the same onix tree and fields."""
    (want,) = records(message(PRODUCT))
    products = short(PRODUCT) if tags == "short" else PRODUCT
    root = "ONIXmessage" if tags == "short" else "ONIXMessage"
    (got,) = records(message(products, ns=ns, root=root))
    assert got["_src"] == {"release": "3.1", "tags": tags, "ns": ns}
    want.pop("_src"), got.pop("_src")
    assert got == want


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 700), min_size=1, max_size=8), seed=st.integers(0, 50))
def test_records_do_not_depend_on_chunking(sizes: list[int], seed: int) -> None:
    """However the body is cut (down to one byte per chunk), the records are the same."""
    books = BookCatalogue(60, seed)
    body = b"".join(books.message(range(5), sent=0, number=1))
    assert records(body, sizes) == records(body)


def test_one_byte_chunks() -> None:
    """A body fed one byte at a time gives the same records."""
    body = message(PRODUCT + "\n" + PRODUCT.replace("dk.test.1", "dk.test.2"))
    assert records(body, 1) == records(body)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "no ONIXMessage root"),
        (b"<html><body>Service unavailable</body></html>", "no ONIXMessage root"),
        (message(PRODUCT)[:-40], "truncated"),
        (message(PRODUCT) + b"<junk/>", "unexpected content"),
        (message(PRODUCT).replace(b"UTF-8", b"ISO-8859-1"), "not UTF-8"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            + message(PRODUCT.replace("Gyldendal", "&e;")).split(b"?>", 1)[1],
            "DOCTYPE",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
            + message(PRODUCT.replace("Gyldendal", "&b;")).split(b"?>", 1)[1],
            "DOCTYPE",
        ),
    ],
    ids=["empty", "html", "truncated", "trailing", "latin1", "xxe", "laughs"],
)
def test_hostile_or_broken_bodies_are_refused(body: bytes, why: str) -> None:
    """Each malformed or hostile body is refused with a specific message naming the request."""
    with pytest.raises(MalformedBody, match=why) as err:
        records(body)
    assert err.value.request == "" or "window" in err.value.request


def test_an_undefined_entity_in_a_product_is_refused() -> None:
    """Without a DTD no entity exists: a product using one is malformed, never expanded."""
    with pytest.raises(ProductError, match="not well-formed"):
        records(message(PRODUCT.replace("Gyldendal", "&xxe;")))


def test_invalid_utf8_is_refused() -> None:
    """Bytes that are not UTF-8 inside a product are malformed."""
    with pytest.raises(ProductError, match="not well-formed"):
        records(message(PRODUCT).replace(b"Gyldendal", b"Gyld\xff\xfeendal"))


def test_a_product_without_record_reference_is_refused() -> None:
    """A Product lacking RecordReference cannot be keyed: the batch fails with that reason."""
    bad = PRODUCT.replace("<RecordReference>dk.test.1</RecordReference>", "")
    with pytest.raises(ProductError, match="without a RecordReference"):
        records(message(bad))


def test_an_oversized_product_is_refused() -> None:
    """A product larger than the bound fails as BodyTooLarge instead of growing the buffer."""
    splitter = OnixSplitter(max_element_bytes=4096)
    body = message(PRODUCT.replace("A tale", "x" * 10_000))
    with pytest.raises(BodyTooLarge):
        for i in range(0, len(body), 1000):
            list(splitter.feed(body[i : i + 1000]))


def test_a_gzip_bomb_never_reaches_the_parser_whole() -> None:
    """The splitter is fed decompressed chunks: a bomb of one huge header hits the bound."""
    bomb = gzip.compress(b"<ONIXMessage><Header>" + b" " * (8 << 20))
    splitter = OnixSplitter(max_element_bytes=1 << 20)
    data = gzip.decompress(bomb)
    with pytest.raises(BodyTooLarge):
        for i in range(0, len(data), 1 << 16):
            list(splitter.feed(data[i : i + (1 << 16)]))


def test_iso_dates() -> None:
    """ONIX basic dates and times become ISO 8601 extended; other text is kept."""
    assert iso("20250204") == "2025-02-04"
    assert iso("202502") == "2025-02"
    assert iso("20250204T0930-0400") == "2025-02-04T09:30:00-04:00"
    assert iso("20250204T093015Z") == "2025-02-04T09:30:15Z"
    assert iso("spring 2025") == "spring 2025"


_DIGITS = st.text("0123456789", min_size=6, max_size=6) | st.from_regex(r"\A\d{6}\Z")
_DATES = st.builds(
    lambda ymd, hms, t, z: f"20{ymd}" + (f"{t}{hms}{z}" if t else ""),
    _DIGITS, _DIGITS, st.sampled_from(["", "T", "t", "-"]), st.sampled_from("ZzT"),
)  # fmt: skip


@given(_DATES | st.text("0123456789TZtz+-: \u0663", min_size=8, max_size=8)
       | st.text("0123456789TZtz+-: \u0663", min_size=16, max_size=16))  # fmt: skip
def test_iso_shortcuts_agree_with_the_pattern(value: str) -> None:
    """The sliced 8- and 16-character forms give what the date pattern alone gives."""
    slow = iso(value + " ")  # 9 or 17 characters: only the pattern reads it
    assert iso(value) == (value if slow == value + " " else slow)


def _canonical(xml: bytes) -> bytes:
    parser = etree.XMLParser(remove_blank_text=True)
    return bytes(etree.tostring(etree.fromstring(xml, parser), method="c14n"))


def _roundtrip(product_xml: str, ns: str | None = NS31) -> None:
    (rec,) = records(message(product_xml, ns=ns))
    rebuilt = to_xml(rec["onix"], ns=ns)
    xmlns = f' xmlns="{ns}"' if ns else ""
    original = product_xml.replace("<Product ", f"<Product{xmlns} ", 1)
    if "<Product>" in original:
        original = original.replace("<Product>", f"<Product{xmlns}>", 1)
    assert _canonical(rebuilt) == _canonical(original.encode())


def test_every_simulator_template_round_trips() -> None:
    """ONIX → JSON → ONIX is canonically equal for every product shape the simulator serves."""
    books = BookCatalogue(800, 3)
    for pos in range(0, 800, 3):
        _roundtrip(books.product(pos))


_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
).filter(lambda s: s.strip() == s and s != "")


@settings(max_examples=80, deadline=None)
@given(
    names=st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=4),
    codes=st.lists(st.sampled_from(["93", "10", "20"]), min_size=0, max_size=3),
    flow=st.lists(_TEXT, min_size=0, max_size=3),
    stamp=st.booleans(),
)
def test_generated_products_round_trip(
    names: list[tuple[str, str]], codes: list[str], flow: list[str], stamp: bool
) -> None:
    """Random repeats, attributes, flags, escapes and XHTML: ONIX → JSON → ONIX is lossless."""

    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    contributors = "".join(
        f"<Contributor><SequenceNumber>{i}</SequenceNumber><ContributorRole>A01</ContributorRole>"
        f"<NamesBeforeKey>{esc(a)}</NamesBeforeKey><KeyNames>{esc(b)}</KeyNames></Contributor>"
        for i, (a, b) in enumerate(names, 1)
    )
    subjects = "".join(
        f"<Subject>{'<MainSubject/>' if i == 0 else ''}<SubjectSchemeIdentifier>{c}"
        f"</SubjectSchemeIdentifier><SubjectCode>{i}</SubjectCode></Subject>"
        for i, c in enumerate(codes)
    )
    text = "".join(f"<p>{esc(t)} <i>x</i></p>" for t in flow)
    attr = ' datestamp="20240101"' if stamp else ""
    product = (
        f"<Product{attr}><RecordReference>r</RecordReference>"
        "<NotificationType>03</NotificationType><ProductIdentifier>"
        "<ProductIDType>15</ProductIDType><IDValue>9788702152098</IDValue></ProductIdentifier>"
        "<DescriptiveDetail><ProductComposition>00</ProductComposition>"
        f"<ProductForm>BC</ProductForm>{contributors}{subjects}</DescriptiveDetail>"
        "<CollateralDetail><TextContent><TextType>03</TextType>"
        f'<ContentAudience>00</ContentAudience><Text textformat="05">{text}</Text>'
        "</TextContent></CollateralDetail></Product>"
    )
    _roundtrip(product)
    _roundtrip(product, ns=None)


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ("<Junk>x</Junk>", "unexpected <Junk> between products"),
        (
            "<Wrapper>" + PRODUCT.replace("dk.test.1", "dk.test.9") + "</Wrapper>",
            "a <Product> inside another element",
        ),
        (
            "<Product><RecordReference>o</RecordReference><Product><RecordReference>i"
            "</RecordReference></Product></Product>",
            "a <Product> inside another element",
        ),
    ],
    ids=["junk", "nested", "nested-in-one-batch"],
)
def test_only_products_may_stand_between_products(extra: str, why: str) -> None:
    """Anything but a Product at the top level among the products is refused, never skipped."""
    with pytest.raises(ProductError, match=why):
        records(message(PRODUCT + extra + PRODUCT.replace("dk.test.1", "dk.test.2")))


_FLOWS = (
    f'<Text textformat="05"><p xmlns="{NS31}">a</p><x:b xmlns:x="urn:x">c</x:b>'
    f'<h:i xmlns:h="{NS31}">d</h:i></Text><Text><p xmlns="">a<q xmlns="{NS31}">z</q></p></Text>'
    "<Text>plain &amp; <br/> tail</Text><Mixed>t<b>u</b>v</Mixed>"
)


@pytest.mark.parametrize(
    "root",
    [f'<ONIXMessage xmlns="{NS31}">',
     f"<ONIXMessage release='3.1' xmlns = '{NS31}' xmlns:h='urn:h'>",
     f'<o:ONIXMessage xmlns:o="{NS31}" xmlns="{NS31}">'],
    ids=["default", "quoted-spaced", "prefixed-root"],
)  # fmt: skip
def test_flow_markup_keeps_its_namespace_declarations_whatever_the_root(root: str) -> None:
    """Flow markup is exact: the message's namespace is dropped, every other declaration kept."""
    product = f"<Product><RecordReference>r</RecordReference>{_FLOWS}</Product>"
    body = f"<?xml version='1.0'?>\n{root}<Header/>{product}</{root[1:].split()[0].strip('>')}>"
    (rec,) = records(body.encode())
    assert rec["onix"]["Text"] == [
        {"@textformat": "05", "#text": '<p>a</p><x:b xmlns:x="urn:x">c</x:b>'
                                       f'<h:i xmlns:h="{NS31}">d</h:i>'},
        '<p xmlns="">a<q>z</q></p>',
        "plain &amp; <br/> tail",
    ]  # fmt: skip
    assert rec["onix"]["Mixed"] == ["t<b>u</b>v"]


def test_held_batches_are_joined_up_to_batch_bytes() -> None:
    """Batches are joined in order into batches of at most batch_bytes, none split or lost."""
    held = [Batch(bytes([65 + i]) * n, i) for i, n in enumerate([400, 500, 200, 900, 1200, 10])]
    out = list(OnixSplitter(batch_bytes=1000).join(held))
    assert [(len(b.data), b.products) for b in out] == [(900, 1), (200, 2), (900, 3), (1200, 4),
                                                        (10, 5)]  # fmt: skip
    assert b"".join(b.data for b in out) == b"".join(b.data for b in held)
