"""DBK dumps and syncs against the simulator over real sockets: every product once, as served."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from harvester.cli import main
from harvester.config import OutputConfig, Secret
from harvester.errors import AuthError
from harvester.sim.books import basic
from harvester.sim.server import Simulator
from harvester.sim.settings import FaultProfile, SimSettings
from harvester.sources.dbk import DbkSource
from tests.clocks import NOWS, JumpClock, SimWallClock, Wall, clocks_at
from tests.expected import expected_dbk, written_dbk
from tests.harness import harvest, run_dbk, sim_dbk_config


@pytest.mark.parametrize("now", NOWS, ids=lambda n: n.isoformat())
async def test_dump_writes_every_product_once_as_converted(tmp_path: Path, now: datetime) -> None:
    """A dump writes exactly the catalogue, each line equal to converting the served ONIX, on
    any "now" (the simulator's world and both clocks read it; a leap day and a year end too)."""
    settings = SimSettings(dbk_products=2500, dbk_max_products=300, rate_limit=0, seed=5, now=now)
    sim_clock, clock = clocks_at(now)
    async with Simulator(settings, clock=sim_clock) as sim:
        result = await run_dbk(sim, tmp_path, clock=clock, run_clock=clock)
        books = sim.ctx.books
    assert result.manifest.started.date() == now.date()
    assert result.exit_code == 0 and result.manifest.complete
    assert written_dbk(result) == expected_dbk(books, range(books.size))
    checks = result.manifest.checks
    assert checks["written"] == 2500 and checks["unsplittable"] == []
    parts: dict[str, Any] = dict(result.manifest.partitions)
    windows = [r for r in parts.values() if not r.get("catch_up")]
    assert all(r["ok"] and int(str(r["count"])) < 300 for r in windows)


async def test_a_second_dump_plans_from_the_learned_windows(tmp_path: Path) -> None:
    """The windows of a complete run are kept in state.json and make the next dump cheaper."""
    settings = SimSettings(dbk_products=2500, dbk_max_products=200, rate_limit=0, seed=6)
    async with Simulator(settings) as sim:
        first = await run_dbk(sim, tmp_path)
        second = await run_dbk(sim, tmp_path)
    state = orjson.loads((tmp_path / "dbk" / "state.json").read_bytes())
    assert sum(n for _, _, n in state["windows"]) == 2500
    assert second.manifest.records == first.manifest.records == 2500
    assert second.manifest.checks["windows"] < first.manifest.checks["windows"]  # type: ignore[operator]


async def test_default_world_of_8000_products_dumps_complete(tmp_path: Path) -> None:
    """The default world (no bulk second) is harvestable: 8,000 products, exit 0, all exact."""
    settings = SimSettings(nobb_items=0, dbk_products=8000, rate_limit=0)
    assert settings.dbk_bulk_second is False and settings.dbk_max_products == 2000
    async with Simulator(settings) as sim:
        result = await run_dbk(sim, tmp_path)
        books = sim.ctx.books
    assert books.bulk_second is None
    assert result.exit_code == 0 and result.manifest.complete and not result.failed
    assert result.manifest.checks["unsplittable"] == []
    assert written_dbk(result) == expected_dbk(books, range(books.size))


async def test_more_than_the_cap_in_one_second_is_named_and_incomplete(tmp_path: Path) -> None:
    """The opt-in bulk second (cap + 1 products) is named in the manifest; the run exits 1."""
    settings = SimSettings(
        dbk_products=3000, dbk_max_products=400, rate_limit=0, seed=7, dbk_bulk_second=True
    )
    async with Simulator(settings) as sim:
        result = await run_dbk(sim, tmp_path)
        bulk = sim.ctx.books.bulk_second
    assert bulk is not None and result.exit_code == 1 and not result.manifest.complete
    from harvester.plan.windows import Window

    bad = Window(bulk, bulk + 1).id
    assert result.manifest.checks["unsplittable"] == [bad]
    assert result.failed == (bad,)
    failure: Any = result.manifest.partitions[bad]
    assert "share one second" in str(failure["error"])
    assert result.manifest.records == 3000 - 1  # all but what the cut-off response left out
    assert not (tmp_path / "dbk" / "state.json").exists()


@pytest.mark.parametrize("filters_in", ["query", "body"])
async def test_publisher_filter_as_query_or_body(tmp_path: Path, filters_in: str) -> None:
    """publisher is passed through (GET query or POST JSON body): only that publisher's products."""
    settings = SimSettings(dbk_products=1500, dbk_max_products=200, rate_limit=0, seed=8)
    async with Simulator(settings) as sim:
        result = await run_dbk(sim, tmp_path, publisher="170864", filters_in=filters_in)
        books = sim.ctx.books
    mine = [p for p in range(books.size) if books.publisher[p] == 170864]
    assert 0 < len(mine) < books.size
    assert written_dbk(result) == expected_dbk(books, mine)


async def test_process_pool_gives_the_same_lines(tmp_path: Path) -> None:
    """Converting in two worker processes writes the same records as converting inline."""
    settings = SimSettings(dbk_products=1200, dbk_max_products=500, rate_limit=0, seed=9)
    async with Simulator(settings) as sim:
        pooled = await run_dbk(sim, tmp_path / "a", workers=2)
        books = sim.ctx.books
    assert written_dbk(pooled) == expected_dbk(books, range(books.size))


async def test_tokens_are_renewed_before_they_expire(tmp_path: Path) -> None:
    """Five simulated minutes per export, a 400 s margin: the JWT is refreshed, never refused."""
    wall = Wall(time.time())
    settings = SimSettings(dbk_products=800, dbk_max_products=60, rate_limit=0, seed=10)
    async with Simulator(settings, clock=wall) as sim:
        start = wall.now

        def five_minutes_per_export() -> float:
            return start + 300 * sim.stats["dbk_documents"]

        sim.ctx.clock = five_minutes_per_export
        clock = SimWallClock(five_minutes_per_export)
        result = await run_dbk(sim, tmp_path, clock=clock, concurrency=1, token_refresh_margin=400)
        stats = dict(sim.stats)
    checks = result.manifest.checks
    assert result.exit_code == 0 and result.manifest.records == 800
    assert checks["authentications"] == stats["dbk_authentications"] == 1
    # 1800 s tokens, 300 s per export: a refresh at least every 6 exports.
    assert checks["token_refreshes"] == stats["dbk_refreshes"] >= stats["dbk_documents"] // 6 - 1


async def test_wrong_password_stops_the_source_naming_the_keys(tmp_path: Path) -> None:
    """Refused credentials: AuthError (exit 3) naming dbk.username / dbk.password, not values."""
    settings = SimSettings(dbk_products=100, rate_limit=0)
    async with Simulator(settings) as sim:
        with pytest.raises(AuthError) as err:
            await run_dbk(sim, tmp_path, password=Secret("s3cret-marker"))
    assert err.value.exit_code == 3
    assert "dbk.username / dbk.password" in str(err.value)
    assert "s3cret-marker" not in str(err.value)


async def test_a_foreign_publisher_is_refused_after_one_reauthentication(tmp_path: Path) -> None:
    """A 401 on the export re-authenticates once; a second 401 stops the source (exit 3)."""
    settings = SimSettings(dbk_products=100, rate_limit=0)
    async with Simulator(settings) as sim:
        with pytest.raises(AuthError, match=r"dbk\.publisher"):
            await run_dbk(sim, tmp_path, publisher="999")


@pytest.mark.parametrize("profile", ["flaky", "hostile"])
async def test_faults_heal_to_the_same_records(tmp_path: Path, profile: FaultProfile) -> None:
    """5xx, 429s, resets and slow answers: the records equal the catalogue's, exit 0 (the
    backoffs and 429 waits on a clock that jumps instead of sleeping)."""
    settings = SimSettings(dbk_products=1500, dbk_max_products=300, rate_limit=0, seed=12,
                           faults=profile)  # fmt: skip
    clock = JumpClock()
    async with Simulator(settings) as sim:
        result = await run_dbk(sim, tmp_path, clock=clock, retries=12)
        books = sim.ctx.books
        injected = dict(sim.ctx.faults.injected)
    assert result.exit_code == 0
    assert written_dbk(result) == expected_dbk(books, range(books.size))
    # Faults fall on request identities, and the windows asked for move with the run's start
    # time: a run may draw none that needs a retry. Those it drew were waited out on the clock.
    if set(injected) - {"slow"}:
        assert clock.slept, injected


async def test_sync_carries_changes_and_deletions_since_the_high_water(tmp_path: Path) -> None:
    """A sync fetches only products updated since high-water minus the overlap, deletions too."""
    settings = SimSettings(dbk_products=1000, dbk_max_products=300, rate_limit=0, seed=13)
    async with Simulator(settings) as sim:
        await run_dbk(sim, tmp_path)
        books = sim.ctx.books
        now = int(sim.ctx.clock())
        gone = next(p for p in range(books.size) if "<NotificationType>05" in books.product(p))
        touched = [books.record_reference(p) for p in (3, 400, 999, gone)]
        for ref in touched:
            books.touch(ref, now - 60)
        result = await run_dbk(sim, tmp_path, mode="sync", sync_overlap_days=0.01)
        recent = [p for p in range(books.size) if books.times[p] >= now - 60 - 864 - 5]
    written = written_dbk(result)
    assert set(touched) <= set(written)
    assert set(written) == {books.record_reference(p) for p in recent}
    deletion = orjson.loads(written[touched[-1]])
    assert deletion["deleted"] is True and deletion["notification_type"] == "05"
    assert result.manifest.mode == "sync" and result.exit_code == 0


async def test_cli_dump_dbk_exit_code_and_layout(tmp_path: Path) -> None:
    """`harvester dump dbk --config` writes OUT/dbk/<run_id>/part-*.ndjson.gz and exits 0."""
    settings = SimSettings(dbk_products=600, rate_limit=0, seed=14)
    async with Simulator(settings) as sim:
        config = tmp_path / "h.toml"
        config.write_text(
            f'[output]\ndir = "{tmp_path / "out"}"\n[dbk]\nbase_url = "{sim.url}"\n'
            'username = "harvester"\npassword = "harvester"\nrate_limit = "0"\nworkers = 0\n'
        )
        code = await asyncio.to_thread(main, ["dump", "dbk", "--config", str(config), "-q"])
    assert code == 0
    (run,) = (tmp_path / "out" / "dbk").glob("2*")
    assert (run / "manifest.json").exists() and sorted(p.name for p in run.glob("part-*")) == [
        "part-00000.ndjson.gz"
    ]


async def test_a_product_changed_during_the_dump_ends_in_its_latest_version(
    tmp_path: Path,
) -> None:
    """A product written early and changed mid-run is in the dump once, in its new version."""
    settings = SimSettings(dbk_products=2000, dbk_max_products=150, rate_limit=0, seed=15)
    async with Simulator(settings) as sim:
        books = sim.ctx.books
        moved = books.record_reference(0)  # the oldest product: in the first window of lane 0
        wall = sim.ctx.clock
        touched: list[int] = []

        def clock() -> float:
            if sim.stats["dbk_documents"] >= 6 and not touched:
                touched.append(int(wall()))
                books.touch(moved, touched[0])
            return wall()

        sim.ctx.clock = clock
        result = await run_dbk(sim, tmp_path, concurrency=2)
        final = expected_dbk(books, range(books.size))
    assert touched and result.exit_code == 0
    written = written_dbk(result)
    assert written == final  # every product once, the moved one in its latest version
    assert orjson.loads(written[moved])["onix"]["@datestamp"] == basic(touched[0])
    assert result.manifest.checks["replaced_by_newer_version"] == 1
    assert result.manifest.checks["changed_during_run"] == 1
    assert {s.path for s in result.manifest.shards} == {
        p.name for p in result.run_dir.glob("part-*")
    }, "the replaced shard's old file is gone, the new one listed"


async def test_the_servers_limit_is_followed_without_a_429(tmp_path: Path) -> None:
    """Configured 10x too high, the limiter follows X-RateLimit-* and the server sends no 429."""
    settings = SimSettings(dbk_products=800, dbk_max_products=100, rate_limit=10,
                           rate_window=1.0, seed=16)  # fmt: skip
    async with Simulator(settings) as sim:
        result = await run_dbk(sim, tmp_path, rate_limit="100/1s")
        stats = dict(sim.stats)
        books = sim.ctx.books
    assert result.exit_code == 0
    assert written_dbk(result) == expected_dbk(books, range(books.size))
    assert stats["dbk_requests"] > 10 and stats.get("dbk_429", 0) == 0


async def test_product_ids_filter_fetches_only_those_products(tmp_path: Path) -> None:
    """dbk.product_ids is passed through: exactly those EANs come back, once each."""
    settings = SimSettings(dbk_products=900, dbk_max_products=100, rate_limit=0, seed=17)
    async with Simulator(settings) as sim:
        books = sim.ctx.books
        wanted = [5, 333, 870]
        eans = tuple(books.record_reference(p).removeprefix("dk.dbk.") for p in wanted)
        result = await run_dbk(sim, tmp_path, product_ids=eans, filters_in="body")
    assert written_dbk(result) == expected_dbk(books, wanted)


async def test_cli_dump_all_runs_both_sources_at_once(tmp_path: Path) -> None:
    """`harvester dump all` harvests NOBB and DBK side by side: both complete, exit 0."""
    settings = SimSettings(nobb_items=2000, dbk_products=700, rate_limit=0, seed=18)
    async with Simulator(settings) as sim:
        config = tmp_path / "h.toml"
        config.write_text(
            f'[output]\ndir = "{tmp_path / "out"}"\n'
            f'[nobb]\nbase_url = "{sim.url}"\nusername = "harvester"\npassword = "harvester"\n'
            'rate_limit = "0"\npage_size = 500\n'
            f'[dbk]\nbase_url = "{sim.url}"\nusername = "harvester"\npassword = "harvester"\n'
            'rate_limit = "0"\nworkers = 0\n'
        )
        summary = tmp_path / "summary.json"
        argv = ["dump", "all", "--config", str(config), "-q", "--summary-json", str(summary)]
        code = await asyncio.to_thread(main, argv)
    assert code == 0
    body = orjson.loads(summary.read_bytes())
    assert [(s["source"], s["records"], s["complete"]) for s in body["sources"]] == [
        ("nobb", 2000, True),
        ("dbk", 700, True),
    ]


async def test_json_logs_carry_one_line_per_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-v --log-format json: one JSON object per request with source, window, status, duration."""
    settings = SimSettings(dbk_products=300, rate_limit=0, seed=19)
    async with Simulator(settings) as sim:
        config = tmp_path / "h.toml"
        config.write_text(
            f'[output]\ndir = "{tmp_path / "out"}"\n[dbk]\nbase_url = "{sim.url}"\n'
            'username = "harvester"\npassword = "pw-MARKER-7"\nrate_limit = "0"\nworkers = 0\n'
        )
        argv = ["dump", "dbk", "--config", str(config), "-v", "--log-format", "json"]
        assert await asyncio.to_thread(main, argv) == 3
        config.write_text(config.read_text().replace("pw-MARKER-7", "harvester"))
        assert await asyncio.to_thread(main, argv) == 0
    err = capsys.readouterr().err
    assert "pw-MARKER-7" not in err
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [r for r in lines if r.get("request", "").startswith("dbk window ")]
    assert requests, err
    for r in requests:
        assert r["source"] == "dbk" and r["status"] in (200, 204) and r["attempt"] == 1
        assert r["request"] == f"dbk window {r['partition']}"
        assert isinstance(r["duration_ms"], int) and r["level"] == "info"


async def test_a_checkpoint_group_commits_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finished windows are checkpointed together: one commit, so one shard, per group."""
    import harvester.sources.dbk as dbk

    monkeypatch.setattr(dbk, "CHECKPOINT_RECORDS", 400)
    settings = SimSettings(dbk_products=2500, dbk_max_products=150, rate_limit=0, seed=23)
    async with Simulator(settings) as sim:
        output = OutputConfig(shard_max_records=10_000)
        result = await harvest(DbkSource(sim_dbk_config(sim)), tmp_path, output=output, digest="t")
    groups = 2500 // 400 + 1  # at most this many groups reach 400 records, plus the last
    assert result.manifest.records == 2500
    assert 2 <= len(result.manifest.shards) <= groups + 1
