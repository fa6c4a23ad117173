"""Every other reading of the docs' open points (sim/readings.py): the DEFAULT client, exact.

Each test starts one simulator serving one reading (sometimes with pages clamped small, so that a
chain has many pages on a small catalogue; the test says so) and runs the client with its
default configuration: only ``base_url`` and the credentials are set, the client is never told
the reading. "Exact" is every item or product once, byte for byte as the simulator renders it,
and a complete manifest. The client's clock is the real one with every sleep skipped
(``JumpClock``); where time matters, the simulator's and the client's clocks are one clock that
passes only as the simulator serves requests, so nothing sleeps.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

from harvester.config import DbkConfig, NobbConfig, Secret
from harvester.engine.clock import Clock
from harvester.output import read_lines, verify_run
from harvester.plan.windows import Window
from harvester.progress import Progress
from harvester.run import RunResult
from harvester.sim.readings import Readings
from harvester.sim.server import Simulator
from harvester.sim.settings import DEFAULT_NOW, SimSettings
from harvester.sources.base import Mode
from harvester.sources.dbk import DbkSource
from harvester.sources.dbk_fetch import too_many
from harvester.sources.nobb import NobbSource
from tests.clocks import JumpClock, PagedClock
from tests.expected import converted
from tests.front import Front, Upstream, first_partition
from tests.harness import DBK_AUTH, DBK_EXPORT, NOBB, basic_auth, harvest

#: The day after the simulated world's now: a run on it sees the whole catalogue.
RUN_AT = DEFAULT_NOW.timestamp() + 86_400


def _sim(clock: PagedClock | None = None, **settings: object) -> Simulator:
    sim = Simulator(
        SimSettings(rate_limit=0, **settings),  # type: ignore[arg-type]
        clock=None if clock is None else clock.time,
    )
    if clock is not None:
        clock.sim = sim
    return sim


def _nobb_cfg(sim: Simulator, **kw: object) -> NobbConfig:
    """The default NOBB config: the simulator's URL and account, and ``kw`` where a test says."""
    login = {"base_url": sim.url, "username": Secret("harvester"), "password": Secret("harvester")}
    return NobbConfig(**{**login, **kw})  # type: ignore[arg-type]


def _dbk_cfg(sim: Simulator, **kw: object) -> DbkConfig:
    """The default DBK config: the simulator's URL and account, and ``kw`` where a test says."""
    login = {"base_url": sim.url, "username": Secret("harvester"), "password": Secret("harvester")}
    return DbkConfig(**{**login, **kw})  # type: ignore[arg-type]


async def _nobb(sim: Simulator, out: Path, clock: Clock | None = None, mode: Mode = "dump",
                progress: Progress | None = None) -> RunResult:  # fmt: skip
    """A NOBB run with the default config (clock: the client's, default a JumpClock)."""
    clock = clock or JumpClock()
    source = NobbSource(_nobb_cfg(sim), clock=clock)
    return await harvest(source, out, mode=mode, clock=clock, progress=progress)


async def _dbk(sim: Simulator, out: Path, clock: Clock | None = None,
               progress: Progress | None = None) -> RunResult:  # fmt: skip
    """A DBK dump with the default config (workers, cap, margin: all defaults)."""
    clock = clock or JumpClock()
    return await harvest(DbkSource(_dbk_cfg(sim), clock=clock), out, clock=clock, progress=progress)


def _items(sim: Simulator, *, since: int | None = None) -> dict[int, bytes]:
    """Every item the simulator serves (changed on day ``since`` or later), as rendered."""
    cat = sim.ctx.nobb
    return {cat.keys[p]: orjson.dumps(orjson.loads(cat.render(p))) for p in range(cat.size)
            if p not in cat.vanished and (since is None or cat.modified[p] >= since)}  # fmt: skip


def _products(sim: Simulator, sent: int = 0) -> dict[str, bytes]:
    """Every product converted from the message the simulator renders under its readings, sent
    at ``sent`` (a record's ``updated`` without a datestamp is its message's SentDateTime)."""
    books, r = sim.ctx.books, sim.settings.readings
    body = b"".join(books.message(list(range(books.size)), sent=sent, number=1, release=r.dbk_onix,
                                  datestamps=r.dbk_datestamps))  # fmt: skip
    out = converted(body)
    assert len(out) == books.size
    return out


def _written(result: RunResult, key: str) -> dict[object, bytes]:
    """The run's records by key; complete, verified, no key twice."""
    assert result.exit_code == 0 and result.manifest.complete and not result.failed
    verify_run(result.run_dir)
    lines = list(read_lines(result.run_dir))
    keys = [orjson.loads(line)[key] for line in lines]
    assert len(keys) == len(set(keys)), "a record was written twice"
    return dict(zip(keys, lines, strict=True))


# -- NOBB ---------------------------------------------------------------------------------------


async def test_total_hits_only_on_a_chains_first_page(tmp_path: Path) -> None:
    """x-totalHits only on page 1 (pages clamped to 200 so chains have many): exact dump."""
    readings = Readings(nobb_total_hits_first_only=True, nobb_page_clamp=200)
    async with _sim(nobb_items=3000, seed=41, readings=readings) as sim:
        result = await _nobb(sim, tmp_path)
        assert _written(result, "nobbNumber") == _items(sim)
        assert sim.stats["nobb_pages"] > 3000 / 200


async def test_kebab_header_spelling(tmp_path: Path) -> None:
    """x-total-hits / x-forward-token / x-backward-token, the docs' example (pages clamped to
    250 so the tokens are needed): exact dump."""
    readings = Readings(nobb_header_style="kebab", nobb_page_clamp=250)
    async with _sim(nobb_items=3000, seed=48, readings=readings) as sim:
        result = await _nobb(sim, tmp_path)
        assert _written(result, "nobbNumber") == _items(sim)


async def test_page_size_silently_clamped(tmp_path: Path) -> None:
    """pageSize 10000 served 250 items a page, silently: a short page is not the end; exact."""
    async with _sim(nobb_items=3000, seed=42, readings=Readings(nobb_page_clamp=250)) as sim:
        result = await _nobb(sim, tmp_path)
        assert _written(result, "nobbNumber") == _items(sim)


async def test_202_accepted_is_waited_out_not_an_empty_page(tmp_path: Path) -> None:
    """The first ask of every page answers 202 (pages clamped to 300): each is asked again
    after Retry-After (1 s) or a backoff, no retry spent, no chain ended early; exact."""
    clock = JumpClock()
    progress = Progress(source="nobb")
    readings = Readings(nobb_accepted=True, nobb_page_clamp=300)
    async with _sim(nobb_items=2000, seed=43, readings=readings) as sim:
        result = await _nobb(sim, tmp_path, clock, progress=progress)
        assert _written(result, "nobbNumber") == _items(sim)
        accepted = sim.stats["nobb_accepted"]
    assert accepted > 2000 / 300 and progress.accepted == accepted
    assert result.manifest.checks["accepted_202"] == accepted
    assert progress.retries == 0
    assert 1.0 in clock.slept  # a Retry-After: 1 was waited


async def test_202_costs_no_retry_attempt(tmp_path: Path) -> None:
    """One 202 on every page with a retry budget of zero: still exact (a 202 is no retry)."""
    clock = JumpClock()
    async with _sim(nobb_items=1500, seed=44, readings=Readings(nobb_accepted=True)) as sim:
        cfg = _nobb_cfg(sim, retries=0)
        result = await harvest(NobbSource(cfg, clock=clock), tmp_path, clock=clock)
        assert _written(result, "nobbNumber") == _items(sim)


async def test_202_forever_fails_its_partition_by_name(tmp_path: Path) -> None:
    """A page answered 202 every time (a Front in the way) is waited out a bounded number of
    times (max_429_waits, 50), then its partition fails by name: exit 1, never a loop."""

    async def spoil(request: web.Request, up: Upstream) -> web.Response | None:
        return web.Response(status=202) if first_partition(request, "asc") else None

    clock = JumpClock()
    async with _sim(nobb_items=1500, seed=49) as sim, Front(sim, spoil) as front:
        cfg = _nobb_cfg(sim, base_url=front.url, partitions=2, page_size=100)
        result = await harvest(NobbSource(cfg, clock=clock), tmp_path, clock=clock)
    assert result.exit_code == 1 and len(result.failed) == 1
    (pid,) = result.failed
    entry = result.manifest.partitions[pid]
    assert isinstance(entry, dict) and str(entry["error"]).startswith(
        "HTTP 202 Accepted 51 times in a row [nobb partition start.."
    )
    assert len(front.spoiled) == 51
    assert max(clock.slept) <= 30.0  # backoff capped at max_delay


async def test_tokens_dying_after_their_own_issue(tmp_path: Path) -> None:
    """Tokens live 2 s (scaled from 2 h) from their own page, chains run far longer (pages
    clamped to 100, 60 ms a request): no token dies, nothing is cut; exact."""
    clock = PagedClock(per_request=0.06, start=RUN_AT)
    readings = Readings(nobb_token_from_issue=True, nobb_page_clamp=100)
    async with _sim(clock, nobb_items=4000, seed=45, token_ttl=2, readings=readings) as sim:
        result = await _nobb(sim, tmp_path, clock)
        assert _written(result, "nobbNumber") == _items(sim)
        assert sim.stats["expired_tokens"] == 0


async def test_an_expired_token_answered_400_like_garbage(tmp_path: Path) -> None:
    """Tokens die 2 s after a chain's first page and are then answered 400, not page 1 (pages
    clamped to 100, 60 ms a request): walks are cut by change date instead; exact."""
    clock = PagedClock(per_request=0.06, start=RUN_AT)
    readings = Readings(nobb_expired_400=True, nobb_page_clamp=100)
    async with _sim(clock, nobb_items=4000, seed=46, token_ttl=2, readings=readings) as sim:
        result = await _nobb(sim, tmp_path, clock)
        assert _written(result, "nobbNumber") == _items(sim)
        assert sim.stats["expired_tokens"] >= 1
    assert any(isinstance(r, dict) and r.get("split_into")
               for r in result.manifest.partitions.values())  # fmt: skip


async def test_an_item_vanishes_between_a_dump_and_a_sync(tmp_path: Path) -> None:
    """Three items vanish (no date change, no feed) and five change after an exact dump: the
    sync writes exactly what the API now serves from its start, and says it is complete."""
    clock = JumpClock()
    async with _sim(nobb_items=2000, seed=47) as sim:
        dump = await _nobb(sim, tmp_path, clock)
        assert _written(dump, "nobbNumber") == _items(sim)
        keys = sim.nobb_keys()
        for key in keys[10:13]:
            sim.vanish_nobb(key)
        run_day = datetime.fromtimestamp(clock.time(), UTC).date()
        for key in keys[100:105]:
            sim.touch_nobb(key, run_day + timedelta(days=1))
        clock.offset += 2 * 86_400
        sync = await _nobb(sim, tmp_path, clock, mode="sync")
        since = (run_day - timedelta(days=1) - date(1970, 1, 1)).days  # sync_overlap_days = 1
        assert _written(sync, "nobbNumber") == _items(sim, since=since)
    assert set(keys[100:105]) <= set(_items(sim, since=since))


# -- DBK ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["413", "400"])
async def test_cap_answered_as_an_error_is_split(tmp_path: Path, status: str) -> None:
    """A window over the server's cap of 100 answered 413 / 400 problem+json (the client's cap
    is its default 2000): split like a full answer, never retried, the stated cap learned."""
    readings = Readings(dbk_cap_answer=status)  # type: ignore[arg-type]
    progress = Progress(source="dbk")
    async with _sim(dbk_products=1500, dbk_max_products=100, seed=51, readings=readings) as sim:
        result = await _dbk(sim, tmp_path, progress=progress)
        assert _written(result, "record_reference") == _products(sim)
        refused = sim.stats["dbk_refused_too_many"]
    checks = result.manifest.checks
    assert refused >= 1 and checks["refused_as_too_many"] == refused
    assert progress.retries == 0  # a refusal is not transient
    # Learned from "limited to 100 products" (400), else only split: either way far fewer
    # refusals than windows once the planner knows.
    assert isinstance(checks["windows"], int) and refused < checks["windows"]


async def test_a_refused_one_second_window_is_named_and_incomplete(tmp_path: Path) -> None:
    """One second holding 401 products, refused with 413 at a cap of 400: it cannot be split,
    so the run exits 1 naming it (unsplittable, with the server's words); the rest is written."""
    readings = Readings(dbk_cap_answer="413")
    async with _sim(dbk_products=3000, dbk_max_products=400, seed=7, dbk_bulk_second=True,
                    readings=readings) as sim:  # fmt: skip
        result = await _dbk(sim, tmp_path)
        bulk = sim.ctx.books.bulk_second
    assert bulk is not None and result.exit_code == 1 and not result.manifest.complete
    bad = Window(bulk, bulk + 1).id
    assert result.manifest.checks["unsplittable"] == [bad] and result.failed == (bad,)
    entry = result.manifest.partitions[bad]
    assert isinstance(entry, dict) and entry["error"] == (
        "the server refuses this one-second window as too many products (HTTP 413: Content Too "
        "Large (The export holds more than 400 products: try with a smaller window)): it cannot "
        "be split, its products are missing"
    )
    assert result.manifest.records == 3000 - 401


@pytest.mark.parametrize(
    ("status", "body", "stated"),
    [
        (413, {"title": "Content Too Large", "status": 413}, None),
        (413, {"message": "Too many results. Please try with a smaller pagesize"}, None),
        (400, {"title": "Too many products: the export is limited to 500 products per request",
               "detail": "Narrow updatedFrom / updatedTo"}, 500),
        (413, {"title": "Content Too Large", "detail": "more than 2,000 products"}, 2000),
        (400, {"title": "Bad Request", "detail": "not an ISO 8601 date/time: '2025'"}, "no"),
        (400, {"title": "Publisher Id in request does not match the logged in one"}, "no"),
    ],
)  # fmt: skip
def test_which_answers_refuse_a_window_as_too_many(
    status: int, body: dict[str, object], stated: int | str | None
) -> None:
    """413 always, a 400 only when it says so; the cap is the number tied to products/limit."""
    found = too_many(status, orjson.dumps(body))
    if stated == "no":
        assert found is None
    else:
        assert found is not None and found[1] == stated and found[0].startswith(f"HTTP {status}")


async def test_no_cap_at_all(tmp_path: Path) -> None:
    """2,500 products in one answer (no cap; the client's default cap is 2000): exact."""
    async with _sim(dbk_products=2500, seed=52, readings=Readings(dbk_cap_answer="none")) as sim:
        result = await _dbk(sim, tmp_path)
        assert _written(result, "record_reference") == _products(sim)


async def test_empty_window_as_200_with_no_product(tmp_path: Path) -> None:
    """Empty windows (the catch-up, sparse years) answer 200 with <NoProduct/>: exact."""
    async with _sim(dbk_products=800, seed=53, readings=Readings(dbk_empty_200=True)) as sim:
        result = await _dbk(sim, tmp_path)
        assert _written(result, "record_reference") == _products(sim)


@pytest.mark.parametrize("release", ["3.0", "none"])
async def test_onix_30_namespace_or_none(tmp_path: Path, release: str) -> None:
    """ONIX 3.0 namespace and release, or no namespace: every product, converted alike."""
    readings = Readings(dbk_onix=release)  # type: ignore[arg-type]
    async with _sim(dbk_products=800, seed=54, readings=readings) as sim:
        result = await _dbk(sim, tmp_path)
        written = _written(result, "record_reference")
        assert written == _products(sim)


@pytest.mark.parametrize("datestamps", ["absent", "old"])
async def test_filter_on_a_time_the_xml_does_not_show(tmp_path: Path, datestamps: str) -> None:
    """Datestamps absent, or one 2001 date on every product, cap 100 cut off silently (the
    client told 100): full windows split at midpoints; exact (the server's clock stands still,
    so every message's SentDateTime, a record's ``updated`` without a datestamp, is one)."""
    readings = Readings(dbk_datestamps=datestamps)  # type: ignore[arg-type]
    still = PagedClock(per_request=0.0, api="dbk", start=RUN_AT)
    async with _sim(still, dbk_products=1200, dbk_max_products=100, seed=55,
                    readings=readings) as sim:  # fmt: skip
        cfg = _dbk_cfg(sim, max_products_per_response=100)
        clock = JumpClock()
        result = await harvest(DbkSource(cfg, clock=clock), tmp_path, clock=clock)
        assert _written(result, "record_reference") == _products(sim, sent=int(RUN_AT))


async def test_products_shuffled_on_each_call(tmp_path: Path) -> None:
    """Another order on every call, cap 100 cut off silently (the client told 100): exact."""
    readings = Readings(dbk_shuffle=True)
    async with _sim(dbk_products=1200, dbk_max_products=100, seed=56, readings=readings) as sim:
        cfg = _dbk_cfg(sim, max_products_per_response=100)
        clock = JumpClock()
        result = await harvest(DbkSource(cfg, clock=clock), tmp_path, clock=clock)
        assert _written(result, "record_reference") == _products(sim)


@pytest.mark.parametrize("refusal", [403, 401])
async def test_refresh_refused_with_tokens_shorter_than_the_margin(
    tmp_path: Path, refusal: int
) -> None:
    """JWTs live 10 s, each export takes 1 s, refresh answers 403 (or 401): one refresh, then
    the run logs in directly about every 7.5 s (a quarter of the life as margin), not before
    every request as a 60 s margin did; exact."""
    clock = PagedClock(per_request=1.0, api="dbk", start=RUN_AT)
    readings = Readings(dbk_refresh_refuses=refusal, dbk_token_life=10)
    async with _sim(clock, dbk_products=3000, dbk_max_products=150, seed=57,
                    readings=readings) as sim:  # fmt: skip
        cfg = _dbk_cfg(sim, max_products_per_response=150)
        result = await harvest(DbkSource(cfg, clock=clock), tmp_path, clock=clock)
        assert _written(result, "record_reference") == _products(sim)
        exports, refreshes = sim.stats["dbk_requests"], sim.stats["dbk_refresh_calls"]
        logins = sim.stats["dbk_authentications"]
    assert refreshes == 1
    assert exports >= 20 and logins <= exports / 5 + 2


async def test_jwt_key_rotated_mid_run(tmp_path: Path) -> None:
    """The signing key changes every 45 s (15 s an export): every earlier token answers 401,
    the session logs in again once each time; exact."""
    clock = PagedClock(per_request=15.0, api="dbk", start=RUN_AT)
    readings = Readings(dbk_rotate_key=45)
    async with _sim(clock, dbk_products=1500, dbk_max_products=150, seed=58,
                    readings=readings) as sim:  # fmt: skip
        cfg = _dbk_cfg(sim, max_products_per_response=150)
        result = await harvest(DbkSource(cfg, clock=clock), tmp_path, clock=clock)
        assert _written(result, "record_reference") == _products(sim)
        assert sim.stats["dbk_authentications"] >= 3


async def test_only_the_docs_time_format_accepted(tmp_path: Path) -> None:
    """Z and extended times answered 400, 20250204T093000+0000 accepted: the dump is exact."""
    async with _sim(dbk_products=800, seed=59, readings=Readings(dbk_basic_time_only=True)) as sim:
        result = await _dbk(sim, tmp_path)
        assert _written(result, "record_reference") == _products(sim)
        async with aiohttp.ClientSession() as http:
            login = {"username": "harvester", "password": "harvester"}
            async with http.post(sim.url + DBK_AUTH, json=login) as r:
                auth = {"Authorization": "Bearer " + (await r.json())["token"]}
            statuses = []
            for when in ("20250204T0930-0400", "20250204T093000+0000", "20250204T093000Z",
                         "2025-02-04T09:30:00+00:00", "20250204"):  # fmt: skip
                url = sim.url + DBK_EXPORT
                async with http.get(url, params={"updatedTo": when}, headers=auth) as r:
                    statuses.append(r.status)
    assert statuses == [200, 200, 400, 400, 400]


# -- Both ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "br", "identity"])
async def test_one_encoding_whatever_was_offered(tmp_path: Path, encoding: str) -> None:
    """A server that knows one encoding and sends it whatever Accept-Encoding offered: both
    dumps exact."""
    readings = Readings(encoding=encoding)  # type: ignore[arg-type]
    async with _sim(nobb_items=1500, dbk_products=600, seed=60, readings=readings) as sim:
        nobb = await _nobb(sim, tmp_path / "n")
        assert _written(nobb, "nobbNumber") == _items(sim)
        dbk = await _dbk(sim, tmp_path / "d")
        assert _written(dbk, "record_reference") == _products(sim)
        async with aiohttp.ClientSession(auto_decompress=False) as http:
            headers = {"Accept-Encoding": "identity" if encoding != "identity" else "gzip, br",
                       **basic_auth(sim.settings)}  # fmt: skip
            async with http.get(sim.url + NOBB, headers=headers) as r:
                sent = r.headers.get("Content-Encoding", "identity")
    assert sent == encoding
