"""One simulated DBK product's ONIX: a ``<Product>`` template drawn from (seed, template).

``product_template`` draws a template's shape (title, contributors, form, text, subjects,
price, extent, status, language) from one generator, then writes it block by block
(identifiers, descriptive, collateral, publishing, supply detail). ``@@ISBN@@``, ``@@TS@@``,
``@@PUB@@``, ``@@PUBNAME@@`` and ``@@PD@@`` mark where ``BookCatalogue`` fills in each product's
own values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from xml.sax.saxutils import escape

__all__ = ["product_template"]

_FIRST = [
    "Søren",
    "Karen",
    "Hans Christian",
    "Tove",
    "Peter",
    "Ida",
    "Jens",
    "Mette",
    "Åse",
    "Bjørn",
]
_LAST = ["Kierkegaard", "Blixen", "Andersen", "Ditlevsen", "Høeg", "Jørgensen", "Nørgaard", "Ærø"]
_WORDS = [
    "hav",
    "skov",
    "lys",
    "mørke",
    "sommer",
    "vinter",
    "by",
    "hjerte",
    "rejse",
    "drøm",
    "kærlighed",
    "nat",
    "sol",
    "øen",
    "fortælling",
    "historie",
    "barn",
    "familie",
    "krig",
    "fred",
    "fremtid",
]
_THEMA = ["FBA", "FF", "FFP", "FYT", "YFB", "DNB", "WBA", "JBSF", "FJ", "NHD"]
_FORMS = ["BB", "BC", "BC", "BB", "ED", "AJ"]
_ISBN = "@@ISBN@@"


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a template drew: the variable parts of its ``<Product>``, as ONIX fragments."""

    notification: str
    form: str
    title: str
    contributors: str
    text: str
    subjects: str
    price: str
    extent: str
    status: str
    language: str


def product_template(seed: int, template: int) -> str:
    """Template ``template``'s ``<Product>`` element (one line), with its fill-in markers."""
    # Drawn from one generator in the order written: moving a draw changes every product.
    rng = random.Random(seed * 1_000_033 + template)
    r = rng.random()
    notification = "05" if r < 0.02 else "04" if r < 0.12 else "03"
    title = _title(rng, template)
    contributors = _contributors(rng)
    form = rng.choice(_FORMS)
    text = "".join(
        f"<p>{' '.join(rng.choice(_WORDS) for _ in range(rng.randrange(20, 60)))}.</p>"
        for _ in range(rng.randrange(1, 5))
    )
    subjects = _subjects(rng)
    price = f"{rng.randrange(49, 449)}.{rng.choice(['00', '95', '50'])}"
    extent = (
        f"<Extent><ExtentType>00</ExtentType><ExtentValue>{rng.randrange(48, 900)}"
        "</ExtentValue><ExtentUnit>03</ExtentUnit></Extent>"
        if form in ("BB", "BC")
        else ""
    )
    status = "07" if notification == "05" else rng.choice(["04", "04", "04", "02"])
    language = "dan" if rng.random() < 0.9 else "eng"
    shape = _Shape(
        notification, form, title, contributors, text, subjects, price, extent, status, language
    )
    return (
        f'<Product datestamp="@@TS@@">{_identifiers(shape)}{_descriptive(shape)}'
        f"{_collateral(shape)}{_publishing(shape)}{_supply(shape)}</Product>\n"
    )


def _title(rng: random.Random, template: int) -> str:
    """The ``<TitleDetail>``: one to four words, and a subtitle for two in five."""
    title = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(1, 5))).capitalize()
    if template % 97 == 0:
        title += " & andre fortællinger <bind 1>"
    subtitle = (
        f"<Subtitle>{escape(rng.choice(_WORDS).capitalize())}</Subtitle>"
        if rng.random() < 0.4
        else ""
    )
    return (
        "<TitleDetail><TitleType>01</TitleType><TitleElement>"
        "<TitleElementLevel>01</TitleElementLevel><NoPrefix/>"
        f"<TitleWithoutPrefix>{escape(title)}</TitleWithoutPrefix>{subtitle}"
        "</TitleElement></TitleDetail>"
    )


def _contributors(rng: random.Random) -> str:
    """One to three ``<Contributor>``s, the first an author."""
    contributors = []
    for k in range(rng.randrange(1, 4)):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        role = "A01" if k == 0 else rng.choice(["A01", "A12", "B06", "B01"])
        contributors.append(
            f"<Contributor><SequenceNumber>{k + 1}</SequenceNumber>"
            f"<ContributorRole>{role}</ContributorRole>"
            f"<PersonName>{first} {last}</PersonName>"
            f"<NamesBeforeKey>{first}</NamesBeforeKey><KeyNames>{last}</KeyNames>"
            f'<BiographicalNote textformat="05"><p>{first} {last} er født i '
            f"{1940 + rng.randrange(60)}.</p></BiographicalNote></Contributor>"
        )
    return "".join(contributors)


def _subjects(rng: random.Random) -> str:
    """One to three Thema ``<Subject>``s, the first the main one."""
    return "".join(
        f"<Subject>{'<MainSubject/>' if k == 0 else ''}"
        f"<SubjectSchemeIdentifier>93</SubjectSchemeIdentifier>"
        f"<SubjectCode>{rng.choice(_THEMA)}</SubjectCode></Subject>"
        for k in range(rng.randrange(1, 4))
    )


def _identifiers(s: _Shape) -> str:
    """Record reference, notification type, and the ISBN as GTIN-13 and ISBN-13."""
    return (
        f"<RecordReference>dk.dbk.{_ISBN}</RecordReference>"
        f"<NotificationType>{s.notification}</NotificationType>"
        f"<ProductIdentifier><ProductIDType>15</ProductIDType><IDValue>{_ISBN}</IDValue>"
        "</ProductIdentifier>"
        f"<ProductIdentifier><ProductIDType>03</ProductIDType><IDValue>{_ISBN}</IDValue>"
        "</ProductIdentifier>"
    )


def _descriptive(s: _Shape) -> str:
    """Block 1: form, title, contributors, language, extent and subjects."""
    return (
        "<DescriptiveDetail><ProductComposition>00</ProductComposition>"
        f"<ProductForm>{s.form}</ProductForm>{s.title}{s.contributors}"
        "<Language><LanguageRole>01</LanguageRole>"
        f"<LanguageCode>{s.language}</LanguageCode></Language>"
        f"{s.extent}{s.subjects}</DescriptiveDetail>"
    )


def _collateral(s: _Shape) -> str:
    """Block 2: the description."""
    return (
        "<CollateralDetail><TextContent><TextType>03</TextType>"
        f'<ContentAudience>00</ContentAudience><Text textformat="05">{s.text}</Text>'
        "</TextContent></CollateralDetail>"
    )


def _publishing(s: _Shape) -> str:
    """Block 4: imprint, publisher (its DBK number), country, status, publication date."""
    return (
        "<PublishingDetail><Imprint><ImprintName>@@PUBNAME@@</ImprintName></Imprint>"
        "<Publisher><PublishingRole>01</PublishingRole>"
        "<PublisherIdentifier><PublisherIDType>01</PublisherIDType>"
        "<IDTypeName>DBK kundenummer</IDTypeName><IDValue>@@PUB@@</IDValue>"
        "</PublisherIdentifier><PublisherName>@@PUBNAME@@</PublisherName></Publisher>"
        "<CountryOfPublication>DK</CountryOfPublication>"
        f"<PublishingStatus>{s.status}</PublishingStatus>"
        "<PublishingDate><PublishingDateRole>01</PublishingDateRole>"
        '<Date dateformat="00">@@PD@@</Date></PublishingDate>'
        "</PublishingDetail>"
    )


def _supply(s: _Shape) -> str:
    """Block 6: DBK as supplier, availability (40 for a deleted record) and the price."""
    return (
        "<ProductSupply><SupplyDetail><Supplier><SupplierRole>01</SupplierRole>"
        "<SupplierName>DBK</SupplierName></Supplier>"
        f"<ProductAvailability>{'40' if s.notification == '05' else '21'}</ProductAvailability>"
        f"<Price><PriceType>02</PriceType><PriceAmount>{s.price}</PriceAmount>"
        "<CurrencyCode>DKK</CurrencyCode></Price></SupplyDetail></ProductSupply>"
    )
