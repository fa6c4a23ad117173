"""NOBB hostile input end to end: one partition gets a bad answer, the run names it and goes on.

Each test puts a ``Front`` (tests/front.py) between the harvester's real ``NobbSource`` and the
simulator and spoils the answers of the first partition's ascending walk (from its second page,
so records of the partition are already in the sink when it fails). The run must end with exit
1 and the manifest naming that partition with the exact error (source, partition, request), the
partition absent from the checkpoint's finished ones, every other partition written exactly as
served, and a ``--resume`` with the fault gone must end with exactly the clean records. A 401
is the exception: it stops the source (exit 3, no manifest), and the resume is the same.
"""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import brotli
import orjson
import pytest
from aiohttp import web

from harvester.config import OutputConfig
from harvester.errors import AuthError
from harvester.run import RunResult
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.nobb import NobbSource
from tests.clocks import JumpClock
from tests.expected import served_nobb, written_nobb
from tests.front import Front, Upstream, first_partition
from tests.harness import harvest, nobb_config

SETTINGS = SimSettings(nobb_items=1200, rate_limit=0, seed=31)
Spoil = Callable[[Front, web.Request, Upstream], Awaitable[web.StreamResponse | None]]


async def _run(url: str, out: Path, *, resume: bool = False) -> tuple[RunResult, NobbSource]:
    cfg = nobb_config(url, page_size=20, concurrency=4, partitions=4, retries=2)
    source = NobbSource(cfg, clock=JumpClock())
    output = OutputConfig(shard_max_records=300)
    return await harvest(source, out, output=output, resume=resume), source


def _later_asc_page(request: web.Request) -> bool:
    """A page after the first of the first partition's ascending walk."""
    return first_partition(request, "asc") and "pageToken" in request.query


def _victim(front: Front) -> tuple[str, str]:
    """The spoiled partition's id and its request label (its `to` day is in the query)."""
    to = dict(parse_qsl(front.spoiled[0].split("?", 1)[1]))["to"]
    return f"start..{to}", f"nobb partition start..{to} (asc)"


async def _fails_then_resumes(
    tmp_path: Path, spoil: Spoil, error: Callable[[str, str], str]
) -> Front:
    """Run with ``spoil``: exit 1 naming the partition with ``error(pid, label)``; then resume."""
    async with Simulator(SETTINGS) as sim:
        served = await served_nobb(sim, SETTINGS)
        async with Front(sim) as front:
            front.spoil = lambda request, up: spoil(front, request, up)
            result, _ = await _run(front.url, tmp_path)
            pid, label = _victim(front)
            assert result.exit_code == 1 and not result.manifest.complete
            assert result.failed == (pid,)
            entry = result.manifest.partitions[pid]
            assert isinstance(entry, dict) and entry["error"] == error(pid, label)
            done = orjson.loads((result.run_dir / "checkpoint.json").read_bytes())["done"]
            assert pid not in done and len(done) == len(result.manifest.partitions) - 2
            written = written_nobb(result.run_dir)
            assert all(served[k] == line for k, line in written.items())
            last_day = pid.split("..")[1]
            others = {k for k, line in served.items() if _day(line) > last_day}
            assert others <= set(written)
            front.spoil = None
            resumed, _ = await _run(front.url, tmp_path, resume=True)
    assert resumed.exit_code == 0 and resumed.run_dir == result.run_dir
    assert written_nobb(resumed.run_dir) == served
    return front


def _day(line: bytes) -> str:
    return str(orjson.loads(line)["status"]["lastModifiedDate"])[:10]


def _items(body: bytes) -> list[bytes]:
    return [orjson.dumps(item) for item in orjson.loads(body)]


def _page(items: list[bytes], tail: bytes = b"") -> bytes:
    return b"[" + b",".join(items) + tail + b"]"


def _get(label: str, pid: str) -> str:
    """The label of a walk's page request: partition, direction, method, path, day range."""
    return f"{label} GET /api/v2/items ..{pid.split('..')[1]}"


async def test_malformed_json_page(tmp_path: Path) -> None:
    """A page with a fourth item that is not JSON fails its partition, the rest goes on."""

    good: list[bytes] = []

    async def spoil(front: Front, request: web.Request, up: Upstream) -> web.Response | None:
        if not _later_asc_page(request):
            return None
        good[:] = _items(up.body)[:3]
        return web.Response(body=_page(good, b',{"nobbNumber":1,"x":tru}'),
                            content_type="application/json")  # fmt: skip

    def error(pid: str, label: str) -> str:
        fourth = 1 + sum(len(item) + 1 for item in good)  # where the broken item starts
        return (
            "NOBB page: invalid JSON (JSON is malformed: invalid character (byte 22)) "
            f"(item 3, near byte {fourth}) [{_get(label, pid)}]"
        )

    await _fails_then_resumes(tmp_path, spoil, error)


@pytest.mark.parametrize("encoding", ["gzip", "br"])
async def test_truncated_compressed_stream(tmp_path: Path, encoding: str) -> None:
    """A gzip or br body cut off before its end marker fails as truncated after its retries."""

    async def spoil(front: Front, request: web.Request, up: Upstream) -> web.Response | None:
        if not _later_asc_page(request):
            return None
        packed = gzip.compress(up.body) if encoding == "gzip" else brotli.compress(up.body)
        return web.Response(body=packed[: len(packed) // 2], content_type="application/json",
                            headers={"Content-Encoding": encoding})  # fmt: skip

    def error(pid: str, label: str) -> str:
        return f"the compressed body ended early [{_get(label, pid)}]"

    front = await _fails_then_resumes(tmp_path, spoil, error)
    assert len(front.spoiled) == 2  # the first attempt and one retry (retries = 2)


@pytest.mark.parametrize(
    ("body", "content_type", "why"),
    [
        (b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>",
         "text/html", "the page is not a JSON array"),
        (b"", "application/json", "empty body, expected a JSON array"),
        (b'<?xml version="1.0"?><items><item nobbNumber="1"/></items>', "application/xml",
         "the page is not a JSON array"),
    ],
    ids=["html-error-page-200", "empty-200", "wrong-content-type"],
)  # fmt: skip
async def test_not_a_json_page(tmp_path: Path, body: bytes, content_type: str, why: str) -> None:
    """An HTML error page, an empty body or XML, each with status 200: the page is refused."""

    async def spoil(front: Front, request: web.Request, up: Upstream) -> web.Response | None:
        if not _later_asc_page(request):
            return None
        return web.Response(body=body, content_type=content_type)

    def error(pid: str, label: str) -> str:
        return f"NOBB page: {why} (item 0, near byte 0) [{_get(label, pid)}]"

    await _fails_then_resumes(tmp_path, spoil, error)


async def test_invalid_utf8_in_an_item(tmp_path: Path) -> None:
    """A byte that is not UTF-8 inside the third item's text is refused, never written."""
    bad: list[bytes] = []

    async def spoil(front: Front, request: web.Request, up: Upstream) -> web.Response | None:
        if not _later_asc_page(request):
            return None
        items = _items(up.body)
        items[2] = items[2][:-1] + b',"note":"bad \xff byte"}'
        bad[:] = [items[2]]
        return web.Response(body=_page(items), content_type="application/json")

    def error(pid: str, label: str) -> str:
        at = bad[0].index(b"\xff")
        return (
            f"NOBB page: invalid UTF-8 at byte {at} of the item "
            f"(item 2, near byte 1) [{_get(label, pid)}]"
        )

    await _fails_then_resumes(tmp_path, spoil, error)


async def test_an_item_without_nobbnumber(tmp_path: Path) -> None:
    """An item lacking nobbNumber cannot be keyed: its page is refused, naming the item."""

    async def spoil(front: Front, request: web.Request, up: Upstream) -> web.Response | None:
        if not _later_asc_page(request):
            return None
        items = _items(up.body)
        items[2] = items[2].replace(b'"nobbNumber"', b'"nobbNo"', 1)
        return web.Response(body=_page(items), content_type="application/json")

    def error(pid: str, label: str) -> str:
        return f"NOBB page: item 2 has no nobbNumber (item 2, near byte 1) [{_get(label, pid)}]"

    await _fails_then_resumes(tmp_path, spoil, error)


async def test_a_token_that_never_changes(tmp_path: Path) -> None:
    """A forward token equal to the one just sent would loop forever: the walk stops."""

    async def spoil(front: Front, request: web.Request, up: Upstream) -> web.Response | None:
        if not _later_asc_page(request):
            return None
        headers = {**up.headers, "x-forwardToken": request.query["pageToken"]}
        return web.Response(body=up.body, headers=headers)

    def error(pid: str, label: str) -> str:
        return f"the forward token did not change [{label}]"

    await _fails_then_resumes(tmp_path, spoil, error)


async def test_the_same_page_forever_is_cut_around(tmp_path: Path) -> None:
    """Page 1 again for every token of one partition's ascending walk: the partition is cut by
    change date until its pieces need no token there; the dump ends exact, in bounded requests."""

    async def spoil(front: Front, request: web.Request, up: Upstream) -> web.Response | None:
        if not _later_asc_page(request):
            return None
        query = [(k, v) for k, v in request.query.items() if k != "pageToken"]
        first = await front.fetch(request, f"{request.path}?{urlencode(query)}")
        token = f"same-page-{len(front.spoiled)}"
        return web.Response(body=first.body, headers={**first.headers, "x-forwardToken": token})

    async with Simulator(SETTINGS) as sim:
        served = await served_nobb(sim, SETTINGS)
        async with Front(sim) as front:
            front.spoil = lambda request, up: spoil(front, request, up)
            result, _ = await _run(front.url, tmp_path)
    assert result.exit_code == 0 and result.manifest.complete
    assert written_nobb(result.run_dir) == served
    cut = [r for r in result.manifest.partitions.values() if isinstance(r, dict)
           and r.get("split_into")]  # fmt: skip
    assert cut and 0 < len(front.spoiled) <= 40


async def test_the_same_page_forever_on_one_day(tmp_path: Path) -> None:
    """Every item on one day (no cut by date can help) and page 1 for every ascending token:
    bounded restarts, then that partition fails by name (exit 1); --resume ends exact."""

    async def spoil(request: web.Request, up: Upstream) -> web.Response | None:
        q = request.query
        if q.get("sortOrder") != "asc" or "pageToken" not in q:
            return None
        query = [(k, v) for k, v in q.items() if k != "pageToken"]
        first = await front.fetch(request, f"{request.path}?{urlencode(query)}")
        token = f"same-page-{len(front.spoiled)}"
        return web.Response(body=first.body, headers={**first.headers, "x-forwardToken": token})

    from datetime import date

    async with Simulator(SETTINGS) as sim:
        for key in sim.nobb_keys():
            sim.touch_nobb(key, date(2026, 11, 2))
        served = await served_nobb(sim, SETTINGS)
        async with Front(sim, spoil) as front:
            result, _ = await _run(front.url, tmp_path)
            assert result.exit_code == 1 and not result.manifest.complete
            (pid,) = result.failed
            entry = result.manifest.partitions[pid]
            assert isinstance(entry, dict) and entry["error"] == (
                f"page 1 came back 4 times (tokens keep expiring) [nobb partition {pid} (asc)]"
            )
            assert len(front.spoiled) == 4
            front.spoil = None
            resumed, _ = await _run(front.url, tmp_path, resume=True)
    assert resumed.exit_code == 0 and resumed.run_dir == result.run_dir
    assert written_nobb(resumed.run_dir) == served


async def test_a_401_in_the_middle_of_a_run(tmp_path: Path) -> None:
    """A 401 mid-walk stops the source (exit 3) naming the keys; nothing unfinished is listed."""
    async with Simulator(SETTINGS) as sim:
        served = await served_nobb(sim, SETTINGS)
        async with Front(sim) as front:

            async def spoil(request: web.Request, up: Upstream) -> web.Response | None:
                if not _later_asc_page(request):
                    return None
                return web.json_response({"message": "Unauthorized"}, status=401)

            front.spoil = spoil
            with pytest.raises(AuthError) as info:
                await _run(front.url, tmp_path)
            pid, _ = _victim(front)
            lo, hi = pid.split("..")
            label = f"nobb partition {pid} (asc) GET /api/v2/items {lo.replace('start', '')}.."
            assert str(info.value) == (
                "nobb: the server refused the credentials from nobb.username / nobb.password "
                f"(HTTP 401 at /api/v2/items) [{label}{hi.replace('end', '')}]"
            )
            assert info.value.exit_code == 3
            (run_dir,) = (tmp_path / "nobb").glob("2*")
            assert not (run_dir / "manifest.json").exists()  # never a manifest of a stopped run
            checkpoint = orjson.loads((run_dir / "checkpoint.json").read_bytes())
            assert pid not in checkpoint["done"]
            front.spoil = None
            resumed, _ = await _run(front.url, tmp_path, resume=True)
    assert resumed.exit_code == 0 and resumed.run_dir == run_dir
    assert written_nobb(run_dir) == served


@pytest.mark.parametrize(
    "item",
    [
        b'{"nobbNumber":2,"t":"a\xffb"}',
        b'{"nobbNumber":2,"t\xfe":1}',
        b'{"nobbNumber":2,"t":"\xc3"}',
    ],
    ids=["in-a-value", "in-a-key", "cut-sequence"],
)
def test_the_splitter_checks_utf8_of_fields_it_does_not_read(item: bytes) -> None:
    """Invalid UTF-8 anywhere in an item is refused, even in fields the key lookup skips."""
    from harvester.errors import MalformedBody
    from harvester.parse.nobb import ItemSplitter

    splitter = ItemSplitter(label="nobb partition p (asc)")
    at = next(i for i, byte in enumerate(item) if byte >= 0x80)
    with pytest.raises(MalformedBody) as info:
        splitter.feed(b'[{"nobbNumber":1},' + item + b',{"nobbNumber":3}]')
        splitter.close()
    assert str(info.value) == (
        f"NOBB page: invalid UTF-8 at byte {at} of the item "
        "(item 1, near byte 1) [nobb partition p (asc)]"
    )
