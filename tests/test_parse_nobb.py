"""ItemSplitter: exact items whatever the chunking, served bytes kept, bad pages rejected."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.errors import MalformedBody
from harvester.parse.nobb import ItemSplitter, NobbItem

TRICKY = [
    {"nobbNumber": 10000001, "primaryText": 'has },{"nobbNumber" inside', "x": [{"a": [1]}, {}]},
    {"nobbNumber": 10000002, "status": {"lastModifiedDate": "2024-01-02T12:00:00"}},
    {"nobbNumber": 10000003, "suppliers": [{"packages": [{"k": "}, ,]"}, {"k": '\\"}'}]}]},
    {"nobbNumber": "10000004", "text": "ÆØÅ æøå \u2603 \\u00e6", "n": None, "f": 1.5e-3},
    {"primaryText": "key last", "nobbNumber": 10000005, "big": "x" * 100_000},
]


def _split(body: bytes, size: int) -> list[NobbItem]:
    s = ItemSplitter()
    out: list[NobbItem] = []
    for i in range(0, len(body), size):
        out.extend(s.feed(body[i : i + size]))
    out.extend(s.close())
    return out


def test_items_come_out_as_served() -> None:
    """Each item's line is exactly the served bytes, with its key and modified time."""
    parts = [orjson.dumps(item) for item in TRICKY]
    items = _split(b"[" + b",".join(parts) + b"]", 4096)
    assert [i.line for i in items] == parts
    assert [i.key for i in items] == [10000001, 10000002, 10000003, 10000004, 10000005]
    assert items[1].modified == "2024-01-02T12:00:00"
    assert items[0].modified is None


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=50),
    spaces=st.sampled_from([b"", b" ", b"\n  ", b"\r\n\t"]),
)
def test_chunking_and_whitespace_do_not_matter(sizes: list[int], spaces: bytes) -> None:
    """Records are the same however the body is split (down to 1 byte) and spaced."""
    parts = [orjson.dumps(item) for item in TRICKY[:4]]
    body = b"[" + spaces + (spaces + b"," + spaces).join(parts) + spaces + b"]" + spaces
    s = ItemSplitter()
    out: list[NobbItem] = []
    pos = 0
    for size in sizes:
        out.extend(s.feed(body[pos : pos + size]))
        pos += size
    out.extend(s.feed(body[pos:]))
    out.extend(s.close())
    assert [orjson.loads(i.line) for i in out] == [orjson.loads(p) for p in parts]


def test_one_byte_chunks() -> None:
    """Feeding one byte at a time gives the same items."""
    parts = [orjson.dumps(item) for item in TRICKY[:4]]
    assert [i.line for i in _split(b"[" + b",".join(parts) + b"]", 1)] == parts


def test_pretty_printed_items_become_single_lines() -> None:
    """Items with newlines inside are re-encoded so each record stays one NDJSON line."""
    body = orjson.dumps(TRICKY[:2], option=orjson.OPT_INDENT_2)
    items = _split(body, 7)
    assert [i.line for i in items] == [orjson.dumps(x) for x in TRICKY[:2]]


def test_empty_page() -> None:
    """An empty array has no items."""
    assert _split(b" [ ] ", 2) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b'{"items": []}', "not a JSON array"),
        (b"<html>error</html>", "not a JSON array"),
        (b'[{"nobbNumber": 1}, {"nobbNumber": 2}', "not closed"),
        (b'[{"nobbNumber": 1}, {"nobbNumber": 2', "not closed"),
        (b'[{"nobbNumber": 1}, 5]', "not an object"),
        (b'[{"nobbNumber": 1}, {"primaryText": "x"}]', "item 1 has no nobbNumber"),
        (b'[{"nobbNumber": 1},]', "trailing comma"),
        (b'[{"nobbNumber": 1}] trailing', "data after the end"),
        (b'[{"nobbNumber": 1}, {"nobbNumber": 2, "x": tru}]', "invalid JSON"),
    ],
)
def test_malformed_pages(body: bytes, message: str) -> None:
    """Each kind of bad page is a MalformedBody naming what is wrong."""
    with pytest.raises(MalformedBody, match=message):
        _split(body, 3)


def test_memory_is_bounded_by_one_item() -> None:
    """The buffer never holds more than about one item plus one chunk."""
    item = orjson.dumps({"nobbNumber": 1, "pad": "y" * 1000})
    body = b"[" + b",".join([item] * 2000) + b"]"
    s = ItemSplitter()
    peak = 0
    for i in range(0, len(body), 4096):
        s.feed(body[i : i + 4096])
        peak = max(peak, len(s._buf))
    s.close()
    assert peak < 4096 + 2 * len(item)
    assert s.items == 2000
