"""Streaming split of a NOBB page (a JSON array of items) into items, as its bytes arrive.

Each item comes out as the bytes the server sent (every field as served, unknown fields
included), plus its ``nobbNumber`` and ``status.lastModifiedDate``. Only the unfinished tail of
the body is buffered, so memory is bounded by one item plus one chunk, whatever the page size.

How the split works. The buffer holds the body from the start of the first unfinished item. A
*candidate* end of an item is a ``}`` followed (after optional whitespace) by ``,``. The fragment
from the item start to a candidate is tried with msgspec as ``[fragment]`` decoded to
``list[Raw]`` (zero-copy, ~1 GB/s). That decode succeeds exactly when the candidate is a true
top-level boundary: a candidate inside a string leaves that string unterminated, and a candidate
inside a nested value leaves an opened ``{`` or ``[`` unclosed; either way the fragment is not
valid JSON. On success every item in the fragment is emitted. Candidates are tried from the
last one backwards, starting with those followed by ``{"<first key of the first item>"`` (the API
serialises every item with the same key order), so a failed try is rare.

That decode is the one pass over the body: each item's key and modified time are then decoded
from the item's head only, up to the end of its ``status`` object (``nobb_items.head``; the
whole item where that prefix cannot be proven to be the top level's), not by a second decode.
When the items are joined by bare commas (the API's compact form), the decoded buffer becomes
their NDJSON block in place (``Items.block``): each comma a newline, no copy per item.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import NoReturn

import msgspec
import orjson

from harvester.errors import MalformedBody
from harvester.parse.nobb_items import Head, Items, NobbItem, head

__all__ = ["ItemSplitter", "Items", "NobbItem"]


_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_CANDIDATE = re.compile(rb"\}\s*,")
_CLOSING = re.compile(rb"[ \t\r\n]*\]")
_FIRST_KEY = re.compile(rb'\s*\{\s*"((?:[^"\\]|\\.)*)"')
_WS = b" \t\r\n"
_GENERIC_AFTER = 4 << 20


def _modified(heads: list[Head]) -> list[str | None]:
    return [None if h.status is None else h.status.lastModifiedDate for h in heads]


class ItemSplitter:
    """Feed body chunks; get complete items back as soon as they are whole.

    >>> s = ItemSplitter()
    >>> [i.key for i in s.feed(b'[{"nobbNumber": 1}, {"nobbNu')]
    [1]
    >>> len(s.feed(b'mber": 2}]'))
    0
    >>> [i.key for i in s.close()]
    [2]
    """

    def __init__(self, *, label: str = "", max_item_bytes: int = 64 << 20) -> None:
        self._buf = bytearray()
        self._started = False
        self._ended = False
        self._items = 0
        self._offset = 0  # body offset of _buf[0], for error messages
        self._label = label
        self._max_item = max_item_bytes
        self._signature: re.Pattern[bytes] | None = None
        #: The exact bytes of the last boundary found (``},{"nobbNumber"``): the next chunk's
        #: last boundary is found by ``rfind`` from the end, not by scanning the whole buffer.
        self._literal: bytes | None = None

    @property
    def items(self) -> int:
        """How many items have been emitted so far."""
        return self._items

    def feed(self, chunk: bytes) -> Items:
        """Add body bytes; returns the items completed by them."""
        if self._ended:
            if chunk.strip(_WS):
                self._fail("data after the end of the array")
            return Items()
        self._buf += chunk
        if not self._started:
            stripped = self._buf.lstrip(_WS)
            if not stripped:
                return Items()
            if stripped[:1] != b"[":
                self._fail("the page is not a JSON array")
            self._offset += len(self._buf) - len(stripped) + 1
            self._buf = bytearray(stripped[1:])
            self._started = True
        return self._split(final=False)

    def close(self) -> Items:
        """The body is complete: returns the last items (MalformedBody if the array is not)."""
        if not self._started:
            self._fail("empty body, expected a JSON array")
        out = Items() if self._ended else self._split(final=True)
        if not self._ended:
            self._fail("the array is not closed: the body was cut short")
        return out

    def _split(self, *, final: bool) -> Items:
        buf = self._buf
        closing = _CLOSING.match(buf)  # a match, not lstrip: no copy of the buffer per chunk
        if closing:
            if self._items:
                self._fail("a comma before the end of the array")
            self._end(bytes(buf[closing.end() :]))
            return Items()
        if self._signature is None:
            m = _FIRST_KEY.match(buf)
            if m:
                self._signature = re.compile(rb"\}\s*,\s*\{\s*\"" + re.escape(m.group(1)) + rb'"')
        found = self._find_boundary()
        if found is None:
            if final:
                return self._finish_last()
            if len(buf) > self._max_item:
                self._fail(f"an item is larger than {self._max_item} bytes")
            return Items()
        end, doc, raws = found
        items = self._items_of(doc, raws)
        self._offset += end + 1
        del buf[: end + 1]  # the item(s) and the comma after them
        if final:
            items.extend(self._finish_last())
        return items

    def _find_boundary(self) -> tuple[int, bytearray, list[msgspec.Raw]] | None:
        """The ``,`` after the last true item end in the buffer, with the items before it."""
        buf = self._buf
        tried: set[int] = set()
        if self._literal is not None:
            brace = buf.rfind(self._literal)
            if brace >= 0:
                tried.add(brace)
                found = self._try(brace)
                if found is not None:
                    return found
        # With a known signature, plain candidates are tried only once the buffer is large: they
        # mostly fall inside nested arrays, and each failed try costs a decode of the buffer.
        patterns = [self._signature] if self._signature is not None else []
        if not patterns or len(buf) > _GENERIC_AFTER:
            patterns.append(_CANDIDATE)
        for pattern in patterns:
            for m in reversed(list(pattern.finditer(buf))):
                brace = m.start()
                if brace in tried:
                    continue
                tried.add(brace)
                if len(tried) > 64:
                    return None  # pathological: wait for more data (or the end)
                found = self._try(brace)
                if found is not None:
                    if pattern is self._signature:
                        self._literal = m.group(0)
                    return found
        return None

    def _try(self, brace: int) -> tuple[int, bytearray, list[msgspec.Raw]] | None:
        """The items before ``brace`` if it closes a top-level item, else None."""
        buf = self._buf
        # One copy: the memoryview is released when join returns, so ``buf`` may shrink later.
        # A bytearray: the items become their NDJSON block in place (``_items_of``).
        doc = bytearray().join((b"[", memoryview(buf)[: brace + 1], b"]"))
        try:
            raws = _RAW_LIST.decode(doc)
        except msgspec.DecodeError:
            return None
        return buf.index(b",", brace), doc, raws

    def _finish_last(self) -> Items:
        body = bytes(self._buf).rstrip(_WS)
        if not body.endswith(b"]"):
            close = body.rfind(b"]")
            if close >= 0 and self._parses(body[:close]):
                self._fail("data after the end of the array")
            return Items()
        items = self._decode(body[:-1])
        self._end(b"")
        return items

    @staticmethod
    def _parses(fragment: bytes) -> bool:
        try:
            _RAW_LIST.decode(b"[" + fragment + b"]")
        except msgspec.DecodeError:
            return False
        return True

    def _decode(self, fragment: bytes) -> Items:
        doc = bytearray().join((b"[", fragment, b"]"))
        try:
            raws = _RAW_LIST.decode(doc)
        except msgspec.DecodeError as exc:
            self._fail(f"invalid JSON ({exc})")
        return self._items_of(doc, raws)

    def _items_of(self, doc: bytearray, raws: list[msgspec.Raw]) -> Items:
        lengths = list(map(len, raws))
        # Items joined by bare commas, each on one line (the API's compact form): the doc
        # becomes the items' NDJSON block in place, each comma (and the closing bracket) a
        # newline, with no copy per item. Anything else is cut into lines.
        if sum(lengths) + len(lengths) + 1 == len(doc) and b"\n" not in doc:
            ends = list(accumulate(lengths, lambda end, n: end + n + 1, initial=0))[1:]
            try:
                heads = [head(doc, a + 1, b) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                self._bad_item(exc)
            self._check_utf8(doc, raws)
            for end in ends:
                doc[end] = 0x0A  # the comma after the item (the bracket after the last one)
            keys = self._keys(heads)
            self._items += len(ends)
            return Items(keys, None, _modified(heads), block=memoryview(doc)[1:], ends=ends)
        lines = list(map(bytes, raws))
        try:
            heads = list(map(head, lines))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self._bad_item(exc)
        self._check_utf8(doc, raws)
        if b"\n" in doc:  # pretty-printed input: NDJSON needs one line per record
            lines = [orjson.dumps(orjson.loads(line)) if b"\n" in line else line for line in lines]
        keys = self._keys(heads)
        self._items += len(lines)
        return Items(keys, lines, _modified(heads))

    def _bad_item(self, exc: msgspec.MsgspecError) -> NoReturn:
        if isinstance(exc, msgspec.ValidationError):
            self._fail(f"an item is not an object with a numeric nobbNumber ({exc})")
        self._fail(f"invalid JSON ({exc})")

    def _check_utf8(self, doc: bytearray, raws: list[msgspec.Raw]) -> None:
        # msgspec skips the fields it is not asked for without checking their UTF-8: the whole
        # fragment is checked at once (item by item only to name a bad one).
        if not doc.isascii():
            try:
                doc.decode()
            except UnicodeDecodeError:
                self._bad_utf8(raws)

    def _keys(self, heads: list[Head]) -> list[int]:
        keys = [head.nobbNumber for head in heads]
        if set(map(type, keys)) - {int}:  # a numeric string, or no key at all (bools are out)
            keys = [self._key(key, n) for n, key in enumerate(keys)]
        return keys  # type: ignore[return-value]  # checked above

    def _key(self, key: object, n: int) -> int:
        if isinstance(key, str) and key.isdigit():
            key = int(key)
        if not isinstance(key, int) or isinstance(key, bool):
            self._items += n
            self._fail(f"item {self._items} has no nobbNumber")
        return key

    def _bad_utf8(self, raws: list[msgspec.Raw]) -> NoReturn:
        for n, raw in enumerate(raws):
            try:
                bytes(raw).decode()
            except UnicodeDecodeError as exc:
                self._items += n
                self._fail(f"invalid UTF-8 at byte {exc.start} of the item")
        self._fail("invalid UTF-8 between items")

    def _end(self, rest: bytes) -> None:
        if rest.strip(_WS):
            self._fail("data after the end of the array")
        self._ended = True
        self._buf = bytearray()

    def _fail(self, message: str) -> NoReturn:
        where = f"item {self._items}, near byte {self._offset}"
        raise MalformedBody(f"NOBB page: {message} ({where})", request=self._label)
