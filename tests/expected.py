"""What a run must have written, read two ways: as the simulator serves it, and as written.

``served_nobb`` and ``expected_dbk`` are the bytes a correct harvest writes for the simulator's
catalogue (NOBB items as served; DBK products' ONIX converted); ``written_nobb`` and
``written_dbk`` read a verified run back by key, failing on a key written twice.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson

from harvester.output import read_lines, verify_run
from harvester.parse.onix import convert_batch, read_header
from harvester.parse.onix_split import Batch, OnixSplitter, Prologue
from harvester.run import RunResult
from harvester.sim.books import BookCatalogue
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.harness import NOBB, basic_auth

__all__ = ["converted", "expected_dbk", "served_nobb", "written_dbk", "written_nobb"]


async def served_nobb(sim: Simulator, settings: SimSettings) -> dict[int, bytes]:
    """Every item's bytes exactly as the simulator serves them (one big page)."""
    async with aiohttp.ClientSession() as http:
        params = {"pageSize": "10000"}
        async with http.get(sim.url + NOBB, params=params, headers=basic_auth(settings)) as r:
            return {i["nobbNumber"]: orjson.dumps(i) for i in orjson.loads(await r.read())}


def expected_dbk(books: BookCatalogue, positions: range | list[int]) -> dict[str, bytes]:
    """What the harvester must write for these products: their ONIX, converted, by reference."""
    return converted(b"".join(books.message(list(positions), sent=0, number=1)))


def converted(body: bytes) -> dict[str, bytes]:
    """Every product of one ONIX message ``body``, converted by reference: key -> JSON line."""
    splitter = OnixSplitter()
    out: dict[str, bytes] = {}
    prologue: Prologue | None = None
    for piece in [*splitter.feed(body), *splitter.close()]:
        if isinstance(piece, Prologue):
            prologue = piece
        elif isinstance(piece, Batch):
            assert prologue is not None
            src = read_header(prologue.document)
            out.update(
                (k, line)
                for k, line, _ in convert_batch(
                    prologue.root_open, prologue.root_tag, piece.data, src
                )
            )
    return out


def written_nobb(run_dir: Path) -> dict[int, bytes]:
    """A verified NOBB run's lines by nobbNumber."""
    verify_run(run_dir)
    lines = list(read_lines(run_dir))
    keys = [int(orjson.loads(line)["nobbNumber"]) for line in lines]
    assert len(keys) == len(set(keys)), "an item was written twice"
    return dict(zip(keys, lines, strict=True))


def written_dbk(result: RunResult) -> dict[str, bytes]:
    """A verified DBK run's lines by record_reference."""
    verify_run(result.run_dir)
    lines = list(read_lines(result.run_dir))
    keys = [orjson.loads(line)["record_reference"] for line in lines]
    assert len(keys) == len(set(keys)), "a record_reference was written twice"
    return dict(zip(keys, lines, strict=True))
