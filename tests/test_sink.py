"""ShardSink: exactly-once, rotation by records and bytes, atomic shards with true checksums."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import shutil
import subprocess
import threading
from pathlib import Path
from typing import IO

import pytest

from harvester.errors import OutputError
from harvester.store import compress
from harvester.store.keyset import KeySet
from harvester.store.manifest import ShardInfo
from harvester.store.sink import ShardSink


def _line(i: int) -> bytes:
    return b'{"nobbNumber":%d,"primaryText":"SKRUE \xc3\xb8"}' % i


async def test_rotates_by_records_and_writes_exact_lines(tmp_path: Path) -> None:
    """25 records at 10 per shard give shards of 10, 10 and 5 with exactly those lines."""
    async with ShardSink(tmp_path, keys=KeySet(), shard_max_records=10, batch_bytes=64) as sink:
        for i in range(25):
            assert await sink.write(i, _line(i))
        shards = await sink.commit()
    assert [(s.path, s.records) for s in shards] == [
        ("part-00000.ndjson.gz", 10),
        ("part-00001.ndjson.gz", 10),
        ("part-00002.ndjson.gz", 5),
    ]
    lines = b"".join(gzip.decompress((tmp_path / s.path).read_bytes()) for s in shards)
    assert lines == b"".join(_line(i) + b"\n" for i in range(25))
    assert sorted(p.name for p in tmp_path.iterdir()) == [s.path for s in shards]


async def test_checksums_and_sizes_match_the_files(tmp_path: Path) -> None:
    """Each shard's listed sha256 and byte size are those of the file on disk."""
    async with ShardSink(tmp_path, keys=KeySet(), shard_max_records=7) as sink:
        for i in range(20):
            await sink.write(i, _line(i))
        shards = await sink.commit()
    for s in shards:
        data = (tmp_path / s.path).read_bytes()
        assert s.bytes == len(data)
        assert s.sha256 == hashlib.sha256(data).hexdigest()


async def test_write_many_keeps_order_and_drops_repeats(tmp_path: Path) -> None:
    """write_many() writes new keys in order, drops repeats (within a call too), and says which."""
    async with ShardSink(tmp_path, keys=KeySet(), batch_bytes=64) as sink:
        assert await sink.write(3, _line(3))
        assert await sink.write_many([1, 2, 3, 2, 4], [_line(i) for i in (1, 2, 3, 2, 4)]) == [
            True, True, False, False, True]  # fmt: skip
        shards = await sink.commit()
    assert (sink.records, sink.duplicates) == (4, 2)
    lines = gzip.decompress((tmp_path / shards[0].path).read_bytes())
    assert lines == b"".join(_line(i) + b"\n" for i in (3, 1, 2, 4))


async def test_duplicates_are_dropped(tmp_path: Path) -> None:
    """A key written twice is kept once; write says False the second time."""
    async with ShardSink(tmp_path, keys=KeySet(), compression="none") as sink:
        assert await sink.write(5, _line(5))
        assert not await sink.write(5, b'{"other":1}')
        assert await sink.write("dk.dbk.1", b'{"x":1}')
        shards = await sink.commit()
    assert (tmp_path / "part-00000.ndjson").read_bytes() == _line(5) + b'\n{"x":1}\n'
    assert shards[0].records == 2
    assert sink.duplicates == 1


async def test_rotates_by_uncompressed_bytes(tmp_path: Path) -> None:
    """A shard is closed once its uncompressed bytes reach shard_max_bytes."""
    size = len(_line(100)) + 1
    async with ShardSink(
        tmp_path, keys=KeySet(), compression="none", shard_max_bytes=size * 3
    ) as sink:
        for i in range(100, 107):
            await sink.write(i, _line(i))
        shards = await sink.commit()
    assert [s.records for s in shards] == [3, 3, 1]


async def test_uncommitted_records_leave_no_shard(tmp_path: Path) -> None:
    """Records never committed leave neither a final shard nor a temp file after close."""
    async with ShardSink(tmp_path, keys=KeySet(), batch_bytes=1) as sink:
        await sink.write(1, _line(1))
        await sink.write(2, _line(2))
        assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    assert list(tmp_path.iterdir()) == []


async def test_write_failure_is_an_output_error(tmp_path: Path) -> None:
    """A failing disk write surfaces as OutputError naming the shard, not a raw OSError."""

    class FullDisk:
        def __init__(self, path: Path) -> None:
            self.path = path

        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    def opener(path: Path) -> IO[bytes]:
        return FullDisk(path)  # type: ignore[return-value]

    with pytest.raises(OutputError, match=r"cannot write .*part-00000.ndjson.gz.tmp: No space"):
        async with ShardSink(tmp_path, keys=KeySet(), opener=opener) as sink:
            await sink.write(1, _line(1))
            await sink.commit()


async def test_a_cancelled_hand_over_is_waited_out_not_dropped(tmp_path: Path) -> None:
    """A write cancelled while its batch is in the writer thread keeps hold of it: commit waits
    the thread out and lists the shard that batch finished; no temp file is left behind."""
    gate, entered = threading.Event(), threading.Event()

    class Gated:
        def __init__(self, path: Path) -> None:
            self.file = path.open("xb")

        def write(self, data: bytes) -> int:
            entered.set()
            gate.wait(30)
            return self.file.write(data)

        def __getattr__(self, name: str) -> object:
            return getattr(self.file, name)

    def opener(path: Path) -> IO[bytes]:
        return Gated(path)  # type: ignore[return-value]

    async with ShardSink(tmp_path, keys=KeySet(), compression="none", shard_max_records=2,
                         batch_bytes=1, opener=opener) as sink:  # fmt: skip
        await sink.write(1, _line(1))
        writing = asyncio.create_task(sink.write(2, _line(2)))  # the batch that ends shard 0
        await asyncio.to_thread(entered.wait, 30)
        writing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writing
        gate.set()
        shards = await sink.commit()
    assert [(s.path, s.records) for s in shards] == [("part-00000.ndjson", 2)]
    assert (tmp_path / "part-00000.ndjson").read_bytes() == _line(1) + b"\n" + _line(2) + b"\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-00000.ndjson"]


async def test_continues_numbering(tmp_path: Path) -> None:
    """A sink resumed with existing shards lists them and numbers new ones after them."""
    old = [ShardInfo(f"part-{i:05d}.ndjson.gz", 1, 10, "0" * 64) for i in range(4)]
    async with ShardSink(tmp_path, keys=KeySet([1]), existing=old) as sink:
        await sink.write(1, _line(1))
        await sink.write(2, _line(2))
        shards = await sink.commit()
    assert shards[:4] == old
    assert [(s.path, s.records) for s in shards[4:]] == [("part-00004.ndjson.gz", 1)]


async def _five_thousand(run_dir: Path) -> Path:
    async with ShardSink(run_dir, keys=KeySet(), batch_bytes=4096) as sink:
        for i in range(5000):
            await sink.write(i, _line(i))
        shards = await sink.commit()
    return run_dir / shards[0].path


@pytest.mark.parametrize("backend", ["isal", "zlib"])
def test_gzip_shards_are_one_standard_gzip_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    """ISA-L and the zlib fallback alike write a gzip stream that gzip and zcat read back."""
    if backend == "zlib":
        monkeypatch.setattr(compress, "ISAL_LEVELS", ())
    elif not compress.ISAL_LEVELS:
        pytest.skip("isal is not installed")
    path = asyncio.run(_five_thousand(tmp_path))
    expected = b"".join(_line(i) + b"\n" for i in range(5000))
    data = path.read_bytes()
    assert data[:3] == b"\x1f\x8b\x08"  # gzip magic, deflate
    assert gzip.decompress(data) == expected
    assert len(data) < len(expected) / 4
    if shutil.which("zcat"):
        out = subprocess.run(["zcat", str(path)], capture_output=True, check=True).stdout
        assert out == expected


async def _shards_of(
    path: Path, blocks: bool, records: int, size: int
) -> list[tuple[str, int, bytes]]:
    """30 records written as blocks of 7 (or as lines), then each shard's name, count, bytes."""
    path.mkdir()
    async with ShardSink(
        path, keys=KeySet(), batch_bytes=256, shard_max_records=records, shard_max_bytes=size
    ) as sink:
        for start in range(0, 30, 7):
            keys = list(range(start, min(start + 7, 30)))
            lines = [_line(i) for i in keys]
            if blocks:
                data = b"".join(line + b"\n" for line in lines)
                ends = [sum(len(x) + 1 for x in lines[: n + 1]) for n in range(len(lines))]
                assert await sink.write_block(keys, memoryview(data), ends) == [True] * len(keys)
            else:
                assert await sink.write_many(keys, lines) == [True] * len(keys)
        shards = await sink.commit()
    return [(s.path, s.records, gzip.decompress((path / s.path).read_bytes())) for s in shards]


@pytest.mark.parametrize(("records", "size"), [(10, 1 << 30), (100_000, 300)])
async def test_blocks_are_cut_into_shards_as_lines_are(
    tmp_path: Path, records: int, size: int
) -> None:
    """Records written as NDJSON blocks give the same shards, byte for byte, as lines do."""
    as_blocks = await _shards_of(tmp_path / "blocks", True, records, size)
    as_lines = await _shards_of(tmp_path / "lines", False, records, size)
    assert as_blocks == as_lines
    assert len(as_blocks) > 2  # the limits cut inside blocks
    assert b"".join(data for _, _, data in as_blocks) == b"".join(
        _line(i) + b"\n" for i in range(30)
    )


async def test_a_block_drops_its_repeated_keys(tmp_path: Path) -> None:
    """A block whose keys were partly written already adds only its new records, in order."""
    async with ShardSink(tmp_path, keys=KeySet()) as sink:
        assert await sink.write(2, _line(2))
        lines = [_line(i) for i in (1, 2, 3)]
        data = b"".join(line + b"\n" for line in lines)
        ends = [len(lines[0]) + 1, len(lines[0]) + len(lines[1]) + 2, len(data)]
        assert await sink.write_block([1, 2, 3], data, ends) == [True, False, True]
        shards = await sink.commit()
    assert sink.duplicates == 1
    got = b"".join(gzip.decompress((tmp_path / s.path).read_bytes()) for s in shards)
    assert got == _line(2) + b"\n" + _line(1) + b"\n" + _line(3) + b"\n"
