"""Sharded NDJSON output: exactly-once by key, compressed off the event loop, atomic shards.

``ShardSink`` takes one JSON object per record (bytes, no newline) with its key. A key already
written in this run is dropped (``write`` returns False). Lines are batched (~1 MB) and handed to
a worker thread that compresses (``compress.py``) and writes them: the compressors release the
GIL, so compression runs on the second core while the event loop parses. At most one batch is
in the thread while the next fills, which is the backpressure: ``write`` waits when the writer
falls behind.

The worker thread's side, one shard file at a time, is ``shard_writer.ShardWriter``.
A shard is written as ``.part-NNNNN.ndjson.gz.tmp``, flushed, fsynced and renamed to
``part-NNNNN.ndjson.gz`` (and the directory fsynced) when it reaches ``shard_max_records`` or
``shard_max_bytes`` (uncompressed), or when ``commit`` asks for everything so far to be durable.
A crash leaves only whole, renamed shards and temp files that a resume deletes. sha256 and sizes
are computed on the bytes as they are written, never by reading back.

Into a bucket (``storage.BucketDir``) the temp file is written to a private local directory
instead and, once finished, uploaded (a multipart upload: the object appears only whole) and
deleted, so local disk holds at most the one shard being written.

gzip runs at level 1 by default: level 6 manages ~22 MB/s on this class of machine, slower than
parsing; level 1 is ~4x faster for ~10 % more bytes. Levels 1 and 2 are compressed by ISA-L
(``isal``), ~4x faster again than zlib at the same size (``compress.py``).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from harvester.errors import OutputError
from harvester.store.compress import (
    Compression,
    decompress_shard,
)
from harvester.store.keyset import KeySet
from harvester.store.manifest import ShardInfo
from harvester.store.shard_writer import Block, ShardWriter, shard_name
from harvester.store.storage import Location, location

__all__ = ["ShardSink", "shard_name"]


class ShardSink:
    """Writes records into ``run_dir`` (a directory or a bucket prefix) as shards; async CM.

    >>> # async with ShardSink(run_dir, keys=KeySet()) as sink:
    >>> #     await sink.write(10002681, b'{"nobbNumber":10002681}')
    >>> #     shards = await sink.commit()
    """

    def __init__(
        self,
        run_dir: Location | Path,
        *,
        keys: KeySet,
        compression: Compression = "gzip",
        gzip_level: int = 1,
        shard_max_records: int = 100_000,
        shard_max_bytes: int = 1 << 30,
        existing: list[ShardInfo] | None = None,
        batch_bytes: int = 1 << 20,
        opener: Callable[[Path], IO[bytes]] | None = None,
    ) -> None:
        self.keys = keys
        self.shards: list[ShardInfo] = list(existing or [])
        self.records = 0
        self.duplicates = 0
        self._batch: list[bytes | Block] = []
        self._batch_size = 0
        self._batch_bytes = batch_bytes
        self._inflight: asyncio.Future[list[ShardInfo]] | None = None
        self._lock = asyncio.Lock()
        dest = location(run_dir)
        # A bucket's shards are staged in a private local directory, one at a time.
        self._staging = None if dest.local is not None else tempfile.mkdtemp(prefix="harvester-")
        self._writer = ShardWriter(
            dest,
            dest.local if dest.local is not None else Path(str(self._staging)),
            compression,
            gzip_level,
            shard_max_records,
            shard_max_bytes,
            1 + max((int(s.path[5:10]) for s in self.shards), default=-1),
            opener or (lambda p: open(p, "xb")),  # noqa: SIM115 - closed by finalize/abandon
        )
        self._closed = False

    async def __aenter__(self) -> ShardSink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def write(self, key: int | str, line: bytes) -> bool:
        """Queue one record unless its key was already written; False for a duplicate."""
        if not self.keys.add(key):
            self.duplicates += 1
            return False
        self._batch.append(line)
        self._batch_size += len(line)
        self.records += 1
        if self._batch_size >= self._batch_bytes:
            await self._hand_over()
        return True

    async def write_lines(self, lines: list[bytes]) -> None:
        """Queue records whose keys the caller has made distinct (a merge): no key set lookup."""
        self._batch += lines
        self._batch_size += sum(map(len, lines))
        self.records += len(lines)
        if self._batch_size >= self._batch_bytes:
            await self._hand_over()

    async def write_many(self, keys: Sequence[int | str], lines: Sequence[bytes]) -> list[bool]:
        """``write`` each record in order (one hand-over check for all): which were new."""
        fresh = self.keys.add_many(keys)
        kept = fresh.count(True)
        if kept == len(lines):
            self._batch += lines
            size = sum(map(len, lines))
        else:
            taken = [line for line, new in zip(lines, fresh, strict=True) if new]
            self._batch += taken
            size = sum(map(len, taken))
        self._batch_size += size
        self.records += kept
        self.duplicates += len(fresh) - kept
        if self._batch_size >= self._batch_bytes:
            await self._hand_over()
        return fresh

    async def write_block(
        self, keys: Sequence[int | str], data: bytes | bytearray | memoryview, ends: list[int]
    ) -> list[bool]:
        """``write_many`` for records laid out as NDJSON in ``data`` (``shard_writer.Block``):
        the buffer goes to the writer as it is when every key is new. The caller must not
        change ``data`` afterwards."""
        fresh = self.keys.add_many(keys)
        kept = fresh.count(True)
        block = Block(data, ends)
        if kept == len(keys):
            self._batch.append(block)
            self._batch_size += len(data)
        elif kept:
            taken = block.lines(fresh)
            self._batch += taken
            self._batch_size += sum(map(len, taken))
        self.records += kept
        self.duplicates += len(fresh) - kept
        if self._batch_size >= self._batch_bytes:
            await self._hand_over()
        return fresh

    async def _hand_over(self) -> None:
        # The batch is taken before waiting, so records written meanwhile start the next one;
        # the lock keeps exactly one batch in the writer thread at a time, in order.
        batch, self._batch, self._batch_size = self._batch, [], 0
        try:
            async with self._lock:
                await self._settle()
                loop = asyncio.get_running_loop()
                self._inflight = loop.run_in_executor(None, self._writer.write, batch)
        except BaseException:
            # Cancelled (or failed) before the batch reached the thread: it goes back in front
            # of what was written meanwhile, for the next hand-over or commit.
            self._batch[:0] = batch
            self._batch_size += sum(map(len, batch))
            raise

    async def _settle(self) -> None:
        # A cancelled wait must not let go of the thread's work: the thread runs on, and its
        # shard would be lost, or raced by the next write, finalize or ``abandon``. Shielded,
        # the future stays ``_inflight`` until it is done, so ``aclose`` waits it out.
        fut = self._inflight
        if fut is None:
            return
        try:
            shards = await asyncio.shield(fut)
        finally:
            if fut.done():  # its outcome (shards or an error) is taken once, here
                self._inflight = None
        self.shards.extend(shards)

    async def commit(self) -> list[ShardInfo]:
        """Make every record written so far durable in final shards; returns all shards so far."""
        if self._batch:
            await self._hand_over()
        async with self._lock:
            await self._settle()
            loop = asyncio.get_running_loop()
            self._inflight = loop.run_in_executor(None, self._writer.finalize)
            await self._settle()
        return list(self.shards)

    async def aclose(self) -> None:
        """Drop what is not committed (its temp file is deleted); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            async with self._lock:
                await self._settle()
        finally:
            self._writer.abandon()
            if self._staging is not None:
                shutil.rmtree(self._staging, ignore_errors=True)

    async def rewrite(self, edit: Callable[[list[bytes]], list[bytes] | None]) -> list[str]:
        """Pass every committed shard's lines through ``edit``; replace the shards it changes.

        ``edit`` returns None for "unchanged", or the shard's new lines (the same records:
        the key set is not touched). A changed shard is written as a new shard (next index)
        that takes its place in ``shards``; the old files' names are returned, to
        be deleted once a checkpoint lists the new ones (a crash in between leaves the old
        ones listed and the new ones stray, or the new ones listed and the old ones stray:
        either way a resume finds whole, listed shards). Runs in the worker thread.
        """
        await self.commit()
        async with self._lock:
            return await asyncio.to_thread(self._rewrite, edit)

    def _rewrite(self, edit: Callable[[list[bytes]], list[bytes] | None]) -> list[str]:
        old: list[str] = []
        shards: list[ShardInfo] = []
        run_dir = self._writer.run_dir
        for info in self.shards:
            data = run_dir.read(info.path)
            if data is None:
                raise OutputError(f"cannot read {run_dir.show(info.path)}: it is missing")
            lines = decompress_shard(info.path, data).splitlines()
            new = edit(lines)
            if new is None:
                shards.append(info)
                continue
            # Longer lines may cross the byte limit: one shard can become two.
            shards += self._writer.write(new) + self._writer.finalize()
            old.append(info.path)
        self.shards = shards
        return old
