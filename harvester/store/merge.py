"""The merge behind ``harvester compact``: runs in, each key once in its newest version, out.

``Merge.run`` reads the input runs newest first and writes a line only if no newer run held its
key, so the first version met is the newest (a later run wins). It holds, as its only index,
the sorted 64-bit codes (``keyset.encode_key``) of the newer runs' keys, plus the current run's
codes while it is read: 16 bytes a key, 24 while one run's codes are sorted at its end (in
pieces, never as a list of Python ints), and a set of the keys an older run holds again (the
changed ones, to count them once).
Records pass as bytes, shard by shard, decompressed in 256 KiB pieces (``iter_lines``); nothing
is parsed but the key (and, for a possible delete or a key held twice by one run, that line).

Where one run holds a key twice (harvester's own runs never do: the sink writes each key once),
the version with the newer change date wins (``Rules.changed``; a tie: the later line): once
that run is read, its duplicates are found in the sorted codes and the losing lines are dropped
from the shards written so far (``ShardSink.rewrite``).

Resume: ``Merge.run`` is deterministic, so a resumed merge replays the lines already visited
(``skip``, from the checkpoint's positions) without writing them, and writes from there on.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import zlib
from array import array
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import orjson

from harvester.errors import OutputError
from harvester.store.keyset import Key, encode_key
from harvester.store.storage import Location

__all__ = ["Counts", "Merge", "Rules", "changed_at", "is_deleted", "iter_lines", "verify_shards"]

CHUNK = 1 << 18  # compressed: ~10x that once inflated (NOBB items), so pieces stay small


def _chunks(run: Location, name: str) -> Iterator[bytes]:
    """A shard's stored bytes in pieces (a local file streamed; an object read whole)."""
    if run.local is not None:
        try:
            with open(run.local / name, "rb") as fh:
                while piece := fh.read(CHUNK):
                    yield piece
        except FileNotFoundError:
            raise OutputError(f"{run.show(name)}: listed in the manifest but missing") from None
        return
    data = run.read(name)
    if data is None:
        raise OutputError(f"{run.show(name)}: listed in the manifest but missing")
    for at in range(0, len(data), CHUNK):
        yield data[at : at + CHUNK]


def _decompressor(name: str) -> Any:
    if name.endswith(".gz"):
        try:
            from isal import isal_zlib

            return isal_zlib.decompressobj(31)
        except ImportError:  # pragma: no cover - isal is a dependency
            return zlib.decompressobj(31)
    if name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()
    return None


def iter_lines(run: Location, name: str) -> Iterator[list[bytes]]:
    """A shard's records (lines without the newline), a list per decompressed piece."""
    z = _decompressor(name)
    rest = b""
    for piece in _chunks(run, name):
        data = rest + (z.decompress(piece) if z is not None else piece)
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield data[: cut - 1].split(b"\n")
    if rest:
        yield [rest]


def verify_shards(run: Location, manifest: dict[str, Any]) -> None:
    """Every shard the manifest lists is there with its byte size and sha256 (OutputError)."""
    for shard in manifest.get("shards") or []:
        name = str(shard["path"])
        sha, size = hashlib.sha256(), 0
        for piece in _chunks(run, name):
            sha.update(piece)
            size += len(piece)
        if size != shard["bytes"] or sha.hexdigest() != shard["sha256"]:
            raise OutputError(f"{run.show(name)}: does not match its manifest (size or sha256)")


@dataclass(frozen=True, slots=True)
class Rules:
    """What the merge needs of a source: a line's key, its change date, and its delete flag."""

    key_of: Callable[[bytes], Key]
    #: The record's change date as text that sorts by time (NOBB status.lastModifiedDate).
    changed: Callable[[bytes], str]
    #: Whether a line is a delete (DBK ``deleted: true``); None for a source without deletes.
    deleted: Callable[[bytes], bool] | None = None
    keep_deleted: bool = False


@dataclass(slots=True)
class Counts:
    """The merge's cross-checks (the snapshot manifest's ``checks``)."""

    visited: int = 0
    replaced: int = 0
    deleted_dropped: int = 0
    deleted_kept: int = 0  # with ``keep_deleted``
    duplicates_in_run: int = 0
    runs: dict[str, int] = field(default_factory=dict)


class Merge:
    """Newest first into ``write``; see the module docstring."""

    def __init__(self, rules: Rules, *, skip: int = 0) -> None:
        self.rules = rules
        self.skip = skip  # lines already visited (and their keepers written) before a resume
        self.counts = Counts()
        self._newer = array("q")  # sorted codes of the runs read so far
        self._replaced: set[int] = set()  # keys met again in an older run: the changed ones

    async def run(
        self,
        runs: list[tuple[str, Location, list[str]]],
        write: Callable[[list[bytes]], Awaitable[None]],
        drop: Callable[[set[bytes], set[bytes]], Awaitable[object]],
        tick: Callable[[int], Awaitable[None]],
        merged: Callable[[str, int], Awaitable[None]],
    ) -> Counts:
        """Merge ``runs`` (run id, directory, shard names; oldest first).

        ``write`` takes kept lines; ``drop(losers, winners)`` removes from what was written the
        losing versions of a key one run holds twice, and all but one copy of each winning
        line (a run may hold the very same line twice); ``tick`` the lines visited so far,
        after each shard; ``merged`` a run's id and line count once it is merged.
        """
        for index, (run_id, where, shards) in enumerate(reversed(runs)):
            codes = array("q")
            for name in shards:
                for lines in iter_lines(where, name):
                    keep = self._pass(lines, codes)
                    if keep:
                        await write(keep)
                await tick(self.counts.visited)
            self.counts.runs[run_id] = len(codes)
            ordered = _sorted(codes)
            del codes
            twice = _repeated(ordered)
            if twice:
                await drop(*self._losers(where, shards, twice))
            if index < len(runs) - 1:  # the oldest run's codes are never looked up again
                self._newer = array("q", heapq.merge(self._newer, _unique(ordered, twice)))
            await merged(run_id, len(ordered))
        self.counts.replaced = len(self._replaced)
        return self.counts

    def _pass(self, lines: list[bytes], codes: array[int]) -> list[bytes]:
        """The lines of one piece that are kept (none of those visited before ``skip``)."""
        c = self.counts
        newer, key_of, deleted = self._newer, self.rules.key_of, self.rules.deleted
        n_newer = len(newer)
        first = self.skip - c.visited  # lines below this index were written before a resume
        keep: list[bytes] = []
        for at, line in enumerate(lines):
            code = encode_key(key_of(line))
            codes.append(code)
            if n_newer:
                i = bisect.bisect_left(newer, code)
                if i < n_newer and newer[i] == code:
                    self._replaced.add(code)
                    continue
            if deleted is not None and b'"deleted"' in line and deleted(line):
                if not self.rules.keep_deleted:
                    c.deleted_dropped += 1
                    continue
                c.deleted_kept += 1
            if at >= first:
                keep.append(line)
        c.visited += len(lines)
        return keep

    def _losers(
        self, where: Location, shards: list[str], twice: set[int]
    ) -> tuple[set[bytes], set[bytes]]:
        """For the keys the run holds twice: the versions that lose (older by change date; a
        tie, the earlier line), and the winners (each to be kept once)."""
        versions: dict[int, list[tuple[str, int, bytes]]] = {}
        seq = 0
        for name in shards:
            for lines in iter_lines(where, name):
                for line in lines:
                    code = encode_key(self.rules.key_of(line))
                    if code in twice:
                        versions.setdefault(code, []).append((self.rules.changed(line), seq, line))
                    seq += 1
        losers: set[bytes] = set()
        winners: set[bytes] = set()
        for found in versions.values():
            found.sort()
            best = found[-1][2]
            winners.add(best)
            losers.update(line for _, _, line in found[:-1] if line != best)
            self.counts.duplicates_in_run += len(found) - 1
        return losers, winners


def _sorted(codes: array[int], piece: int = 1 << 16) -> array[int]:
    """``codes`` sorted, through sorted pieces merged: never a list of the whole run's keys
    (36 bytes a key as Python ints), at most the two arrays (16 bytes a key)."""
    if len(codes) <= piece:
        return array("q", sorted(codes))
    pieces = [array("q", sorted(codes[at : at + piece])) for at in range(0, len(codes), piece)]
    return array("q", heapq.merge(*pieces))


def _repeated(ordered: array[int]) -> set[int]:
    """The codes that occur more than once in a sorted array."""
    return {a for a, b in zip(ordered, islice(ordered, 1, None), strict=False) if a == b}


def _unique(ordered: array[int], twice: set[int]) -> Iterator[int]:
    """A sorted array's codes, each once."""
    if not twice:
        return iter(ordered)
    return (code for at, code in enumerate(ordered) if at == 0 or ordered[at - 1] != code)


def changed_at(*path: str) -> Callable[[bytes], str]:
    """A ``Rules.changed`` reading the text at ``path`` in the record ("" where absent)."""

    def changed(line: bytes) -> str:
        node: Any = orjson.loads(line)
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        return "" if node is None else str(node)

    return changed


def is_deleted(line: bytes) -> bool:
    """Whether a record says ``"deleted": true`` at its top level."""
    data = orjson.loads(line)
    return isinstance(data, dict) and data.get("deleted") is True
