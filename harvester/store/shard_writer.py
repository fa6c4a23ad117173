"""One shard at a time: lines compressed into a temp file, hashed as written, then published.

``ShardWriter`` is ``ShardSink``'s worker-thread side. It cuts lines into shards at
``max_records`` or ``max_bytes`` (uncompressed), writes ``.part-NNNNN.ndjson.gz.tmp`` in its
staging directory, and on ``finalize_open`` flushes, fsyncs (local output) and publishes it into
the run directory as ``part-NNNNN.ndjson.gz``. Every ``OSError`` becomes an ``OutputError``
naming the file; a shard that cannot be published leaves no temp file behind.

A batch holds record lines (bytes, no newline) and ``Block`` values: records already laid out
as NDJSON in one buffer, with the offset after each record's newline. A block is compressed as
it is (a slice of it where a shard ends inside it), not joined again line by line; the shards'
bytes are the same either way.
"""

from __future__ import annotations

import hashlib
import os
from bisect import bisect_left
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from harvester.errors import OutputError
from harvester.store.compress import Compression, Compressor, Data, Plain, compressor
from harvester.store.manifest import ShardInfo
from harvester.store.storage import Location

__all__ = ["Block", "ShardWriter", "shard_name"]

_SUFFIX = {"gzip": ".ndjson.gz", "none": ".ndjson", "zstd": ".ndjson.zst"}


def shard_name(index: int, compression: Compression) -> str:
    """The file name of shard ``index``: ``part-NNNNN`` and the compression's suffix."""
    return f"part-{index:05d}{_SUFFIX[compression]}"


class Block:
    """Records as NDJSON in one buffer: ``data`` (each record followed by a newline) and
    ``ends``, the offset just after each record's newline (the last is ``len(data)``)."""

    __slots__ = ("data", "ends")

    def __init__(self, data: Data, ends: list[int]) -> None:
        self.data = data
        self.ends = ends

    def __len__(self) -> int:
        """The bytes of the records, newlines included."""
        return len(self.data)

    def lines(self, keep: Sequence[bool] | None = None) -> list[bytes]:
        """The records without their newlines (only those whose ``keep`` is true)."""
        data, ends = self.data, self.ends
        starts = [0, *ends[:-1]]
        if keep is None:
            return [bytes(data[a : b - 1]) for a, b in zip(starts, ends, strict=True)]
        return [bytes(data[a : b - 1]) for a, b, k in zip(starts, ends, keep, strict=True) if k]


class ShardWriter:
    """The thread side of ``ShardSink``: owns the open temp file; every method runs in the
    worker thread."""

    def __init__(
        self,
        run_dir: Location,
        staging: Path,
        compression: Compression,
        level: int,
        max_records: int,
        max_bytes: int,
        next_index: int,
        opener: Callable[[Path], IO[bytes]],
    ) -> None:
        self.run_dir = run_dir
        self.staging = staging
        self.compression = compression
        self.level = level
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.index = next_index
        self._open = opener
        self._file: IO[bytes] | None = None
        self._z: Compressor = Plain()
        self._sha = hashlib.sha256()
        self._records = 0
        self._raw = 0
        self._size = 0

    def write(self, batch: Sequence[bytes | Block]) -> list[ShardInfo]:
        """Write ``batch`` in order (lines and blocks); returns the shards it finished."""
        done: list[ShardInfo] = []
        lines: list[bytes] = []
        for entry in batch:
            if isinstance(entry, Block):
                if lines:
                    done += self._write_lines(lines)
                    lines = []
                done += self._write_block(entry)
            else:
                lines.append(entry)
        if lines:
            done += self._write_lines(lines)
        return done

    def _write_block(self, block: Block) -> list[ShardInfo]:
        """A block's records, cut where ``_write_lines`` would cut the same lines."""
        done: list[ShardInfo] = []
        data, ends = block.data, block.ends
        pos = off = 0
        while pos < len(ends):
            if self._file is None:
                self._begin()
            stop = min(len(ends), pos + self.max_records - self._records)
            if self.max_bytes and self._raw + ends[stop - 1] - off >= self.max_bytes:
                # The first record that reaches the byte limit is the last one taken.
                stop = bisect_left(ends, self.max_bytes - self._raw + off, pos, stop) + 1
            end = ends[stop - 1]
            self._emit(data[off:end], stop - pos)
            pos, off = stop, end
            if self._records >= self.max_records or self._raw >= self.max_bytes:
                done.append(self.finalize_open())
        return done

    def _write_lines(self, lines: list[bytes]) -> list[ShardInfo]:
        done: list[ShardInfo] = []
        start = 0
        while start < len(lines):
            if self._file is None:
                self._begin()
            room = self.max_records - self._records
            take = lines[start : start + room]
            # Respect the byte limit too: stop at the line that would cross it (at least one).
            # (The sum first: a batch far below the limit needs no line-by-line walk.)
            if self.max_bytes and self._raw + sum(map(len, take)) + len(take) >= self.max_bytes:
                total, cut = 0, 0
                for cut, line in enumerate(take, 1):  # noqa: B007 - cut is used after the loop
                    total += len(line) + 1
                    if self._raw + total >= self.max_bytes:
                        break
                take = take[:cut]
            self._emit(b"\n".join([*take, b""]), len(take))  # one copy, newline-terminated
            start += len(take)
            if self._records >= self.max_records or self._raw >= self.max_bytes:
                done.append(self.finalize_open())
        return done

    def _begin(self) -> None:
        self._tmp = self.staging / f".{shard_name(self.index, self.compression)}.tmp"
        try:
            self._file = self._open(self._tmp)
        except OSError as exc:
            raise OutputError(f"cannot create {self._tmp}: {exc.strerror}") from exc
        self._z = compressor(self.compression, self.level)
        self._sha = hashlib.sha256()
        self._records = self._raw = self._size = 0

    def _emit(self, data: Data, records: int) -> None:
        self._put(self._z.compress(data))
        self._records += records
        self._raw += len(data)

    def _put(self, out: Data) -> None:
        if not out:
            return
        assert self._file is not None
        try:
            self._file.write(out)
        except OSError as exc:
            raise OutputError(f"cannot write {self._tmp}: {exc.strerror}") from exc
        self._sha.update(out)
        self._size += len(out)

    def finalize_open(self) -> ShardInfo:
        """Finish the open shard: flush, fsync, rename (or upload) into place, fsync the dir."""
        assert self._file is not None
        self._put(self._z.flush())
        name = shard_name(self.index, self.compression)
        fh, self._file = self._file, None
        try:
            try:
                fh.flush()
                if self.run_dir.local is not None:  # an upload reads it back: no fsync needed
                    os.fsync(fh.fileno())
            finally:
                fh.close()
            self.run_dir.publish(self._tmp, name)
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"cannot finalize {self.run_dir.show(name)}: {exc.strerror}") from exc
        self.index += 1
        return ShardInfo(name, self._records, self._size, self._sha.hexdigest())

    def finalize(self) -> list[ShardInfo]:
        return [self.finalize_open()] if self._file is not None else []

    def abandon(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._tmp.unlink(missing_ok=True)
