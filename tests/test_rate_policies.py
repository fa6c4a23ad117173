"""Real dumps over real sockets against every rate-limit policy the simulator serves.

The harvester runs with its *default* ``rate_limit`` ("auto"), which was told nothing about the
policy, and with a deliberately wrong one: far too high (still no 429) or too low (a ceiling it
obeys). The simulator and the harvester share one ``FakeClock``, moved only while no request is
in flight (``_driven``): the clock jumps to the next waiter's deadline, so windows of seconds
pass in milliseconds, the server sees every request at the time the harvester sent it, and
nothing depends on the machine's speed. Every run must be exact (each item once, as served),
draw no 429, and name in its manifest the policy it inferred.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from harvester.config import DbkConfig, NobbConfig, OutputConfig, Secret
from harvester.engine.clock import FakeClock
from harvester.output import read_lines
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.dbk import DbkSource
from harvester.sources.nobb import NobbSource
from tests.harness import harvest

T = TypeVar("T")
LIMIT, WINDOW = 6, 2.0

#: (label, simulator settings) for each reading of the rate-limit docs.
POLICIES: dict[str, dict[str, Any]] = {
    "x epoch": {},
    "x delta": {"reset_style": "delta"},
    "ietf 07-08": {"rate_headers": "ietf"},
    "ietf <= 06": {"rate_headers": "ietf6"},
    "x and ietf": {"rate_headers": "both"},
    "sliding x epoch": {"rate_sliding": True},
    "sliding ietf": {"rate_sliding": True, "rate_headers": "ietf"},
    "clock 40 s ahead": {"clock_skew": 40.0},
    "clock 40 s behind": {"clock_skew": -40.0},
    "5 s window": {"rate_window": 5.0},
}
FAMILY = {"x": "x-ratelimit", "ietf": "ietf", "ietf6": "ietf6", "both": "ietf"}


def _settings(**kw: object) -> SimSettings:
    base: dict[str, object] = {
        "nobb_items": 900, "dbk_products": 400, "rate_limit": LIMIT, "rate_window": WINDOW,
        "seed": 5, "dbk_bulk_second": False,
    }  # fmt: skip
    base.update(kw)
    return SimSettings(**base)  # type: ignore[arg-type]


async def _driven(clock: FakeClock, source: NobbSource | DbkSource, run: Awaitable[T]) -> T:
    """Run ``run`` while moving ``clock`` to the next deadline whenever no request is in flight."""
    task = asyncio.ensure_future(run)
    while not task.done():
        await asyncio.sleep(0.001)
        limiter = getattr(source, "_limiter", None)
        deadline = clock.next_deadline()
        if deadline is not None and (limiter is None or limiter.in_flight == 0):
            await asyncio.sleep(0.002)  # let answers already on their way arrive first
            if limiter is None or limiter.in_flight == 0:
                await clock.advance(max(0.0, deadline - clock.monotonic()))
    return task.result()


async def _nobb_dump(settings: SimSettings, tmp: Path, rate_limit: str | None
                     ) -> tuple[Simulator, dict[str, Any], list[int]]:  # fmt: skip
    clock = FakeClock(start=1_796_000_000.0)
    extra = {} if rate_limit is None else {"rate_limit": rate_limit}
    async with Simulator(settings, clock=clock.time) as sim:
        cfg = NobbConfig(base_url=sim.url, username=Secret("harvester"),
                         password=Secret("harvester"), page_size=100, concurrency=4,
                         partitions=2, **extra)  # type: ignore[arg-type]  # fmt: skip
        source = NobbSource(cfg, clock=clock)
        output = OutputConfig(compression="none")
        run = harvest(source, tmp, output=output, clock=clock, digest="t")
        result = await _driven(clock, source, run)
        assert result.exit_code == 0
        manifest = orjson.loads((result.run_dir / "manifest.json").read_bytes())
        keys = [orjson.loads(line)["nobbNumber"] for line in read_lines(result.run_dir)]
        return sim, manifest, keys


@pytest.mark.parametrize("label", list(POLICIES))
async def test_default_config_follows_every_policy(tmp_path: Path, label: str) -> None:
    """rate_limit left at "auto": an exact NOBB dump, no 429, the policy named in the manifest."""
    settings = _settings(**POLICIES[label])
    sim, manifest, keys = await _nobb_dump(settings, tmp_path, None)
    assert sorted(keys) == sim.nobb_keys()
    assert sim.stats["nobb_429"] == 0
    rl = manifest["rate_limit"]
    assert rl["limit"] == LIMIT
    assert rl["family"] == FAMILY[settings.rate_headers]
    assert (rl["kind"], rl["kind_seen"]) == ("sliding" if settings.rate_sliding else "fixed", True)
    assert rl["skew"] == int(settings.clock_skew)
    assert rl["429s"] == 0 and rl["requests"] == sim.stats["nobb_requests"]
    if not settings.rate_sliding:
        assert rl["window"] == settings.rate_window


@pytest.mark.parametrize("label", ["x epoch", "x delta", "sliding ietf"])
async def test_a_rate_limit_far_too_high_draws_no_429(tmp_path: Path, label: str) -> None:
    """rate_limit "1000/1s" against 6 per 2 s: the server's headers still pace it, no 429."""
    sim, manifest, keys = await _nobb_dump(_settings(**POLICIES[label]), tmp_path, "1000/1s")
    assert sorted(keys) == sim.nobb_keys()
    assert sim.stats["nobb_429"] == 0
    assert manifest["rate_limit"]["ceiling"] == "1000/1s"


@pytest.mark.parametrize("label", ["x epoch", "ietf 07-08"])
async def test_a_rate_limit_too_low_is_a_ceiling(tmp_path: Path, label: str) -> None:
    """rate_limit "1/2s" where the server allows 6 per 2 s: requests leave 2 s apart, no faster."""
    sim, manifest, keys = await _nobb_dump(_settings(**POLICIES[label]), tmp_path, "1/2s")
    assert sorted(keys) == sim.nobb_keys()
    rl = manifest["rate_limit"]
    assert rl["ceiling"] == "1/2s" and rl["429s"] == 0
    sent = sim.stats["nobb_requests"]
    took = _seconds(manifest["finished"]) - _seconds(manifest["started"])
    assert took >= (sent - 1) * 2.0 - 1.0


def _seconds(iso: Any) -> float:
    return datetime.fromisoformat(str(iso)).timestamp()


@pytest.mark.parametrize("label", ["x delta", "sliding x epoch", "clock 40 s ahead"])
async def test_dbk_default_config_follows_the_policy(tmp_path: Path, label: str) -> None:
    """A DBK dump with rate_limit "auto": exact product set, no 429, the policy inferred."""
    clock = FakeClock(start=1_796_000_000.0)
    settings = _settings(**POLICIES[label])
    async with Simulator(settings, clock=clock.time) as sim:
        cfg = DbkConfig(base_url=sim.url, username=Secret("harvester"),
                        password=Secret("harvester"), concurrency=4, workers=0,
                        max_products_per_response=settings.dbk_max_products)  # fmt: skip
        source = DbkSource(cfg, clock=clock)
        output = OutputConfig(compression="none")
        run = harvest(source, tmp_path, output=output, clock=clock, digest="t")
        result = await _driven(clock, source, run)
        assert result.exit_code == 0
        assert sim.stats["dbk_429"] == 0
        assert result.manifest.records == settings.dbk_products
    rl = orjson.loads((result.run_dir / "manifest.json").read_bytes())["rate_limit"]
    assert (rl["limit"], rl["skew"], rl["429s"]) == (LIMIT, int(settings.clock_skew), 0)
