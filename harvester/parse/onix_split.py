"""Cut an ONIX message's bytes at ``<Product>`` boundaries as they stream in, without parsing.

The expensive part of ONIX → JSON (building the tree and the dicts) runs in worker processes;
this splitter, in the event loop, only finds where products end, with one regex search per chunk.
It yields *batches*: runs of whole ``<Product>…</Product>`` elements (reference ``Product`` or
short ``product``, any namespace prefix), each small enough to ship to a worker and large
enough to amortise the trip (``batch_bytes``).

What comes before the first product (the *prologue*: XML declaration, root start tag, Header)
is checked here, because it is where a hostile document puts its weapons: a ``<!DOCTYPE`` or
``<!ENTITY`` anywhere in it is refused (no DTD, so no entity can be defined or expanded, and a
product that uses one fails to parse as an undefined entity), an encoding other than UTF-8 is
refused, and a prologue or product larger than ``max_element_bytes`` is refused. The prologue
with the root closed is a small well-formed document the caller parses for the Header.

After the last product only whitespace, comments and the root end tag may follow; anything else
(or a body that stops before the root is closed) is a malformed or truncated message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from harvester.errors import BodyTooLarge, MalformedBody

__all__ = ["Batch", "OnixSplitter", "Prologue"]

_ROOT = re.compile(rb"<((?:[\w.-]+:)?(?:ONIXMessage|ONIXmessage))[\s>/]")
_PRODUCT_START = re.compile(rb"<(?:[\w.-]+:)?(?:Product|product)[\s>/]")
_PRODUCT_END = re.compile(rb"</(?:[\w.-]+:)?(?:Product|product)\s*>")
_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([^"']+)["']""")
_WEAPONS = (b"<!DOCTYPE", b"<!ENTITY", b"<!doctype", b"<!entity")
_COMMENT = re.compile(rb"<!--.*?-->", re.S)


@dataclass(frozen=True, slots=True)
class Prologue:
    """What precedes the products: ``document`` is it with the root closed (well-formed XML)."""

    root_tag: bytes  #: the root's qualified name, e.g. ``ONIXMessage`` or ``onix:ONIXmessage``
    root_open: bytes  #: the root's start tag, namespace declarations and all
    document: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    """Whole products, to be parsed inside ``root_open … </root_tag>``."""

    data: bytes
    products: int


class OnixSplitter:
    """Feed body chunks; get ``Prologue`` once, then ``Batch`` es; ``close()`` checks the end."""

    def __init__(
        self, *, label: str = "", batch_bytes: int = 1 << 20, max_element_bytes: int = 64 << 20
    ) -> None:
        self.label = label
        self.batch_bytes = batch_bytes
        self.max_element_bytes = max_element_bytes
        self.prologue: Prologue | None = None
        self.products = 0
        self._buf = bytearray()
        self._scan = 0  # where the search for the next product end resumes
        self._end_tag: bytes | None = None  # the exact end tag, once the first one is seen

    def _fail(self, why: str) -> MalformedBody:
        return MalformedBody(f"ONIX message: {why}", request=self.label)

    def feed(self, chunk: bytes) -> Iterator[Prologue | Batch]:
        buf = self._buf
        buf += chunk
        if self.prologue is None:
            start = _PRODUCT_START.search(buf)
            if start is None:
                if len(buf) > self.max_element_bytes:
                    raise BodyTooLarge(
                        f"ONIX message: no <Product> in the first {len(buf):,} bytes",
                        request=self.label,
                    )
                return
            self.prologue = self._read_prologue(bytes(buf[: start.start()]))
            yield self.prologue
            del buf[: start.start()]
            self._scan = 0
        cut = 0
        count = 0
        pos = self._scan
        while True:
            # A serializer writes every end tag alike: after the first (found by the regex,
            # which allows any prefix and whitespace) a plain find does, ~10x faster.
            tag = self._end_tag
            if tag is not None:
                at = buf.find(tag, pos)
                if at < 0:
                    break
                pos = at + len(tag)
            else:
                end = _PRODUCT_END.search(buf, pos)
                if end is None:
                    break
                pos = end.end()
                self._end_tag = end.group()
            count += 1
            if pos - cut >= self.batch_bytes:
                yield self._batch(cut, pos, count)
                cut, count = pos, 0
        if count:
            yield self._batch(cut, pos, count)
            cut = pos
        del buf[:cut]
        # An end tag may straddle the chunk edge: rescan the last few bytes next time.
        self._scan = max(0, len(buf) - 64)
        if len(buf) > self.max_element_bytes:
            raise BodyTooLarge(
                f"ONIX message: a <Product> larger than {self.max_element_bytes:,} bytes",
                request=self.label,
            )

    def _batch(self, lo: int, hi: int, count: int) -> Batch:
        self.products += count
        return Batch(bytes(self._buf[lo:hi]), count)

    def join(self, batches: list[Batch]) -> Iterator[Batch]:
        """Consecutive batches joined, in order, up to ``batch_bytes`` each (one never split).

        ``feed`` cuts a batch wherever a network chunk ends (~64 KB); each batch is a trip to a
        worker and back, so batches held until a body is known whole go as fewer, larger ones.
        """
        group: list[Batch] = []
        size = 0
        for batch in batches:
            if group and size + len(batch.data) > self.batch_bytes:
                yield Batch(b"".join(b.data for b in group), sum(b.products for b in group))
                group, size = [], 0
            group.append(batch)
            size += len(batch.data)
        if group:
            yield Batch(b"".join(b.data for b in group), sum(b.products for b in group))

    def close(self) -> Iterator[Prologue]:
        """Check the end of the body; a message with no products yields its prologue here."""
        buf = bytes(self._buf)
        if self.prologue is None:
            root = _ROOT.search(buf)
            if root is None:
                raise self._fail("the body is not an ONIX message (no ONIXMessage root)")
            head = buf[: buf.rfind(b"</")] if b"</" + root.group(1) in buf else buf
            self.prologue = self._read_prologue(head)
            yield self.prologue
            buf = buf[len(head) :]
        rest = _COMMENT.sub(b"", buf).strip()
        root_tag = self.prologue.root_tag
        if re.fullmatch(b"</" + re.escape(root_tag) + rb"\s*>", rest):
            return
        if not rest or _PRODUCT_START.match(rest) or (b"</" + root_tag).startswith(rest):
            raise self._fail("the body ended before the message was closed (truncated)")
        raise self._fail(f"unexpected content after the last product: {rest[:40]!r}")

    def _read_prologue(self, head: bytes) -> Prologue:
        if any(w in head for w in _WEAPONS):
            raise self._fail("a DOCTYPE or ENTITY declaration is not allowed (DTDs are refused)")
        if len(head) > self.max_element_bytes:
            raise BodyTooLarge("ONIX message: the header is too large", request=self.label)
        m = _DECL_ENCODING.match(head)
        if m and m.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
            raise self._fail(f"encoding {m.group(1).decode('ascii', 'replace')!r} is not UTF-8")
        root = _ROOT.search(head)
        if root is None:
            raise self._fail("no ONIXMessage root element before the first product")
        open_end = head.find(b">", root.end() - 1)
        if open_end < 0:
            raise self._fail("the root start tag is not closed")
        root_tag = root.group(1)
        root_open = head[root.start() : open_end + 1]
        if root_open.endswith(b"/>"):
            raise self._fail("the root element is empty")
        return Prologue(root_tag, root_open, head + b"</" + root_tag + b">")
