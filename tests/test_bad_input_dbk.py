"""DBK hostile input end to end (the ONIX parser alone is covered in tests/test_parse_onix.py).

A 401 in the middle of a run (the server's signing key changes, so every token is refused)
makes the harvester authenticate again, once, and finish exactly. A window answered with a body
that is not a whole ONIX message (status 200) fails as itself, named in the manifest, with no
record of it written; a ``--resume`` once the answers are sane again ends exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from harvester.run import RunResult
from harvester.sim.dbk import DbkApi
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.dbk import DbkSource
from tests.clocks import JumpClock
from tests.expected import expected_dbk, written_dbk
from tests.front import Front, Upstream
from tests.harness import dbk_config, harvest, run_dbk

FIRST = "updatedFrom=19991231T235959%2B0000"  # dbk.start a second early (edges.py): 1st window


def _dbk_api(sim: Simulator) -> DbkApi:
    """The simulator's DBK handler object (it holds the token signing key)."""
    owners = [getattr(r.handler, "__self__", None) for r in sim._runner.app.router.routes()]
    return next(o for o in owners if isinstance(o, DbkApi))


async def test_a_401_mid_run_reauthenticates_once_and_finishes_exactly(tmp_path: Path) -> None:
    """The signing key rotates after 5 exports: every window then 401s once, one new login."""
    settings = SimSettings(dbk_products=1200, dbk_max_products=100, rate_limit=0, seed=17)
    async with Simulator(settings) as sim:
        api = _dbk_api(sim)
        wall = sim.ctx.clock
        rotated: list[bool] = []

        def clock() -> float:
            if sim.stats["dbk_documents"] >= 5 and not rotated:
                rotated.append(True)
                api._key = hashlib.sha256(b"a new signing key").digest()
            return wall()

        sim.ctx.clock = clock
        result = await run_dbk(sim, tmp_path, clock=JumpClock())
        stats = dict(sim.stats)
        books = sim.ctx.books
    assert rotated and result.exit_code == 0 and result.manifest.complete
    assert written_dbk(result) == expected_dbk(books, range(books.size))
    assert result.manifest.checks["authentications"] == stats["dbk_authentications"] == 2
    assert stats["dbk_traces"] >= 1  # the 401 problem answers


def _spoiled(body: bytes) -> Callable[[Upstream], web.Response]:
    return lambda up: web.Response(body=body, content_type="application/xml")


def _cut(up: Upstream) -> web.Response:
    return web.Response(body=up.body[: len(up.body) * 2 // 3], content_type="application/xml")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (_spoiled(b"<html><body><h1>Service Unavailable</h1></body></html>"),
         "the body is not an ONIX message (no ONIXMessage root)"),
        (_spoiled(b""), "the body is not an ONIX message (no ONIXMessage root)"),
        (_cut, "the body ended before the message was closed (truncated)"),
    ],
    ids=["html-200", "empty-200", "cut-mid-product"],
)  # fmt: skip
async def test_a_window_that_is_not_a_whole_onix_message(
    tmp_path: Path, answer: Callable[[Upstream], web.Response], why: str
) -> None:
    """A 200 that is HTML, empty or cut short fails its window by name; --resume is exact."""
    settings = SimSettings(dbk_products=1200, dbk_max_products=100, rate_limit=0, seed=18)

    async def spoil(request: web.Request, up: Upstream) -> web.Response | None:
        return answer(up) if FIRST in request.path_qs and up.status == 200 else None

    async with Simulator(settings) as sim, Front(sim, spoil) as front:
        expected = expected_dbk(sim.ctx.books, range(sim.ctx.books.size))
        result = await _dump(front.url, tmp_path, settings)
        (window,) = result.failed
        assert window.startswith("20000101T000000Z..") and result.exit_code == 1
        entry = result.manifest.partitions[window]
        assert isinstance(entry, dict)
        assert entry["error"] == f"ONIX message: {why} [dbk window {window}]"
        done = orjson.loads((result.run_dir / "checkpoint.json").read_bytes())["done"]
        assert window not in done
        assert len(front.spoiled) == 2  # the first attempt and its one retry
        written = written_dbk(result)
        assert all(expected[k] == line for k, line in written.items())
        end = window.split("..")[1]
        missing = {k for k, line in expected.items() if _updated(line) < end}
        assert missing and not missing & set(written)  # no record of the failed window
        front.spoil = None
        resumed = await _dump(front.url, tmp_path, settings, resume=True)
    assert resumed.exit_code == 0 and resumed.run_dir == result.run_dir
    assert written_dbk(resumed) == expected


def _updated(line: bytes) -> str:
    """A record's update time as in a window id (ISO 8601 basic, UTC)."""
    return str(orjson.loads(line)["updated"]).replace("-", "").replace(":", "")


async def _dump(url: str, out: Path, settings: SimSettings, *, resume: bool = False) -> RunResult:
    cap = settings.dbk_max_products
    cfg = dbk_config(url, retries=2, workers=0, max_products_per_response=cap)
    return await harvest(DbkSource(cfg, clock=JumpClock()), out, resume=resume)
