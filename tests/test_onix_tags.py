"""The generated ONIX 3.1 tag tables: in step with the XSDs, and right where it matters."""

from __future__ import annotations

import pytest

from harvester.parse import onix_tags
from harvester.parse.onix_tags import FLAGS, FLOW, REF_TO_SHORT, REPEATABLE, SHORT_TO_REF
from tests import gen_onix_tags

# Names that repeat under some parents and not under others. Proximity repeats in Stock, where
# it may follow each of OnHand, Reserved, OnOrder and CBO.
PARTLY_REPEATABLE = [
    "TelephoneNumber",
    "EmailAddress",
    "CorporateName",
    "EpubLicense",
    "LocationName",
    "Proximity",
]


@pytest.fixture(scope="module")
def tables() -> gen_onix_tags.Tables:
    """The tables derived from the installed XSDs, built once for the module."""
    return gen_onix_tags.build()


def test_module_matches_the_generator(tables: gen_onix_tags.Tables) -> None:
    """The committed module is exactly what the generator writes from the installed XSDs."""
    committed = gen_onix_tags.TARGET.read_text(encoding="utf-8")
    assert committed == gen_onix_tags.render(tables), "run `python -m tests.gen_onix_tags`"


def test_module_values_match_the_xsds(tables: gen_onix_tags.Tables) -> None:
    """The imported constants equal the tables derived from the installed XSDs."""
    assert tables.short_to_ref == SHORT_TO_REF
    assert tables.repeatable == REPEATABLE
    assert tables.flags == FLAGS
    assert tables.flow == FLOW


def test_header_names_the_schema_revision(tables: gen_onix_tags.Tables) -> None:
    """The do-not-edit header names the generator and the schema revision it read."""
    head = gen_onix_tags.TARGET.read_text(encoding="utf-8").splitlines()[:2]
    assert "python -m tests.gen_onix_tags" in head[0]
    assert tables.version.startswith("Release 3.1, Revision ")
    assert tables.version in head[1]
    assert "Do not edit" in head[1]


@pytest.mark.parametrize(
    ("short", "ref"),
    [
        ("a001", "RecordReference"),
        ("a002", "NotificationType"),
        ("b221", "ProductIDType"),
        ("b244", "IDValue"),
        ("x298", "SenderName"),
        ("d104", "Text"),
        ("x507", "NoProduct"),
        ("product", "Product"),
        ("descriptivedetail", "DescriptiveDetail"),
        ("ONIXmessage", "ONIXMessage"),
        ("epublicense", "EpubLicense"),
    ],
)
def test_short_tags(short: str, ref: str) -> None:
    """Known short tags map to their reference names and back."""
    assert SHORT_TO_REF[short] == ref
    assert REF_TO_SHORT[ref] == short


def test_maps_round_trip() -> None:
    """The two maps are inverse bijections over every ONIX 3.1 element."""
    assert len(SHORT_TO_REF) == len(REF_TO_SHORT) >= 510
    assert {ref: short for short, ref in SHORT_TO_REF.items()} == REF_TO_SHORT
    assert all(SHORT_TO_REF[REF_TO_SHORT[ref]] == ref for ref in REF_TO_SHORT)
    assert all(REF_TO_SHORT[SHORT_TO_REF[short]] == short for short in SHORT_TO_REF)


def test_sets_use_reference_names() -> None:
    """Every name in the sets is a known reference name."""
    assert REF_TO_SHORT.keys() >= (REPEATABLE | FLAGS | FLOW)
    assert not FLAGS & FLOW


@pytest.mark.parametrize(
    "name",
    [
        "Product",
        "ProductIdentifier",
        "Contributor",
        "TitleDetail",
        "Price",
        "Subject",
        "TextContent",
        "Text",
        "ProductSupply",
        "AudienceRangeValue",
        *PARTLY_REPEATABLE,
    ],
)
def test_repeatable(name: str) -> None:
    """Elements that may occur more than once in some parent are repeatable."""
    assert name in REPEATABLE


def test_repeatable_in_some_parents_only() -> None:
    """The partly repeatable names occur at most once under some parent and more under another."""
    ref = gen_onix_tags.load(gen_onix_tags.REFERENCE_XSD)
    models = [gen_onix_tags.content_model(ref, ct) for _, ct in gen_onix_tags.declarations(ref)]
    for name in PARTLY_REPEATABLE:
        assert {m[name] for m in models if name in m} == {1, 2}, name


@pytest.mark.parametrize(
    "name",
    ["ONIXMessage", "Header", "RecordReference", "NotificationType", "DescriptiveDetail"],
)
def test_not_repeatable(name: str) -> None:
    """Elements that occur at most once in every parent are not repeatable."""
    assert name not in REPEATABLE


def test_flags() -> None:
    """The empty flag elements are exactly the eleven in the 3.1 XSD."""
    assert {
        "MainSubject",
        "MainAudience",
        "NoPrefix",
        "NoCollection",
        "NoContributor",
        "NoEdition",
        "NoProduct",
        "NoResource",
        "NoSupplement",
        "PrimaryPart",
        "TaxExempt",
    } == FLAGS


def test_flow() -> None:
    """XHTML flow text elements are in FLOW and plain text elements are not."""
    assert len(FLOW) == 28
    expected = {"Text", "BiographicalNote", "TitleStatement", "EditionStatement"}
    expected |= {"ContributorStatement", "CopyrightStatementText", "PrizeStatement"}
    assert expected <= FLOW
    assert not {"TitleText", "PersonName", "SubjectHeadingText", "IDValue"} & FLOW


def test_all_is_complete() -> None:
    """The module exports its five tables and nothing else."""
    assert sorted(onix_tags.__all__) == [
        "FLAGS",
        "FLOW",
        "REF_TO_SHORT",
        "REPEATABLE",
        "SHORT_TO_REF",
    ]
