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


STATUS_DECOYS = [
    # a nested "status" object before the top-level one
    ({"nobbNumber": 1, "module": {"status": {"lastModifiedDate": "nested"}},
      "status": {"lastModifiedDate": "2024-01-01T00:00:00"}}, 1, "2024-01-01T00:00:00"),
    # "status": inside a string, and a key whose name ends in an escaped quote and "status"
    ({"nobbNumber": 2, "t": '"status":{"lastModifiedDate":"in a string"}',
      'x"status': {"lastModifiedDate": "escaped key"},
      "status": {"lastModifiedDate": "2024-02-02T00:00:00"}}, 2, "2024-02-02T00:00:00"),
    # a } inside the status object's strings; a nested object inside status
    ({"nobbNumber": 3, "status": {"createdDate": "}}", "lastModifiedDate": "2024-03-03T00:00:00"}},
     3, "2024-03-03T00:00:00"),
    ({"nobbNumber": 4, "status": {"sub": {"a": 1}, "lastModifiedDate": "2024-04-04T00:00:00"}},
     4, "2024-04-04T00:00:00"),
    # nobbNumber after status; status not an object; status null
    ({"status": {"lastModifiedDate": "2024-05-05T00:00:00"}, "nobbNumber": 5}, 5,
     "2024-05-05T00:00:00"),
    ({"nobbNumber": 6, "status": [{"lastModifiedDate": "an array"}], "k": {}}, 6, "ERR"),
    ({"nobbNumber": 7, "status": None, "s": {"status": {"lastModifiedDate": "deeper"}}}, 7, None),
]  # fmt: skip


@pytest.mark.parametrize(("item", "key", "modified"), STATUS_DECOYS)
def test_status_read_from_a_prefix_is_never_fooled(
    item: dict[str, object], key: int, modified: str | None
) -> None:
    """Keys and modified times equal a full decode's, whatever "status" decoys precede them."""
    body = b"[" + orjson.dumps(item) + b"," + orjson.dumps({"nobbNumber": 99}) + b"]"
    if modified == "ERR":
        with pytest.raises(MalformedBody, match="not an object with a numeric nobbNumber"):
            _split(body, 7)
        return
    items = _split(body, 7)
    assert [(i.key, i.modified) for i in items] == [(key, modified), (99, None)]
    assert items[0].line == orjson.dumps(item)


def test_a_compact_page_comes_as_an_ndjson_block() -> None:
    """Items joined by bare commas come as one NDJSON block whose lines are the served items."""
    parts = [orjson.dumps(item) for item in TRICKY]
    body = b"[" + b",".join(parts) + b"]"
    s = ItemSplitter()
    chunks = [s.feed(body[:5000]), s.feed(body[5000:]), s.close()]
    blocks = [c for c in chunks if c.block is not None]
    assert blocks, "a compact page gives blocks"
    lines = [line for c in chunks for line in c.lines]
    assert lines == parts
    for c in blocks:
        assert c.block is not None
        assert bytes(c.block) == b"".join(line + b"\n" for line in c.lines)
        assert c.ends[-1] == len(c.block)


def test_spaces_between_items_give_lines_not_a_block() -> None:
    """A page with whitespace between items is cut into lines: no block, same items."""
    parts = [orjson.dumps(item) for item in TRICKY]
    s = ItemSplitter()
    items = s.feed(b"[" + b", ".join(parts) + b" ]")
    items.extend(s.close())
    assert items.block is None
    assert items.lines == parts
