"""harvester probe against the simulator: latency, inferred policy, x-totalHits, sweep line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import orjson
import pytest

from harvester.cli import build_parser
from harvester.config import Config, DbkConfig, NobbConfig, Secret
from harvester.engine.clock import FakeClock
from harvester.errors import ConfigError
from harvester.probe import probe, render
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings


async def _driven(clock: FakeClock, run: Awaitable[Any]) -> Any:
    """Run ``run``, moving the fake clock to each deadline (the probe waits between requests)."""
    task = asyncio.ensure_future(run)
    while not task.done():
        await asyncio.sleep(0.002)
        deadline = clock.next_deadline()
        if deadline is not None:
            await clock.advance(max(0.0, deadline - clock.monotonic()))
    return task.result()


def _config(url: str) -> Config:
    creds: dict[str, Any] = {"base_url": url, "username": Secret("harvester"),
                             "password": Secret("harvester")}  # fmt: skip
    return Config(nobb=NobbConfig(**creds), dbk=DbkConfig(**creds))


@pytest.mark.parametrize(
    ("flags", "family", "style", "sweep"),
    [
        ({}, "x-ratelimit", "epoch", "--rate-limit 30/10s --latency-ms 0"),
        (
            {"reset_style": "delta"},
            "x-ratelimit",
            "delta",
            "--rate-limit 30/10s --latency-ms 0 --reset-style delta",
        ),
        (
            {"rate_headers": "ietf"},
            "ietf",
            "delta",
            "--rate-limit 30/10s --latency-ms 0 --rate-headers ietf",
        ),
        (
            {"rate_headers": "ietf6"},
            "ietf6",
            "delta",
            "--rate-limit 30/10s --latency-ms 0 --rate-headers ietf6",
        ),
        (
            {"clock_skew": 40.0},
            "x-ratelimit",
            "epoch",
            "--rate-limit 30/10s --latency-ms 0 --clock-skew 40",
        ),
        (
            {"rate_sliding": True},
            "x-ratelimit",
            "epoch",
            "--rate-limit 30/10s --latency-ms 0",
        ),
        (
            {"rate_sliding": True, "reset_style": "delta"},
            "x-ratelimit",
            "delta",
            "--rate-limit 30/10s --latency-ms 0 --reset-style delta",
        ),
        (
            {"rate_sliding": True, "rate_headers": "ietf"},
            "ietf",
            "delta",
            "--rate-limit 30/10s --latency-ms 0 --rate-headers ietf",
        ),
    ],
)
async def test_probe_names_each_policy(flags: dict[str, Any], family: str, style: str,
                                       sweep: str) -> None:  # fmt: skip
    """Three requests per source at most; the limit, window, family, reset style, kind and skew."""
    clock = FakeClock(start=1_796_000_003.0)
    settings = SimSettings(nobb_items=700, dbk_products=50, rate_limit=30, rate_window=10.0,
                           **flags)  # fmt: skip
    async with Simulator(settings, clock=clock.time) as sim:
        found = await _driven(clock, probe(_config(sim.url), [], clock=clock))
        assert sim.stats["nobb_requests"] == 3 and sim.stats["dbk_requests"] == 2
    sliding = settings.rate_sliding
    for name in ("nobb", "dbk"):
        f = found[name]
        assert (f["limit"], f["family"], f["reset_style"], f["skew"], f["429s"]) == (
            30, family, style, int(settings.clock_skew), 0)  # fmt: skip
    # NOBB's three requests show the kind; DBK's two exports cannot, so it is assumed fixed.
    nobb, dbk = found["nobb"], found["dbk"]
    assert nobb["window"] == 10.0
    # DBK's window is its longest time-to-reset; a sliding window's UNIX-time reset (its
    # oldest request's arrival plus 10 s) is rounded up to the whole second: up to 1 s more.
    assert 10.0 <= dbk["window"] <= (11.0 if sliding and style == "epoch" else 10.0)
    assert (nobb["kind"], nobb["kind_seen"]) == ("sliding" if sliding else "fixed", True)
    assert (dbk["kind"], dbk["kind_seen"]) == ("fixed", False)
    assert nobb["sweep"] == f"harvester bench --sweep {sweep}" + (" --rate-sliding" * sliding)
    rate = f"30/{dbk['window']:g}s"
    assert dbk["sweep"] == f"harvester bench --sweep {sweep}".replace("30/10s", rate)
    assert nobb["x_totalHits"] == 700
    assert nobb["window_from"] in ("measured", "stated")
    text = render(found)
    assert "x-totalHits   700" in text
    assert f"simulate it:  {nobb['sweep']}" in text and f"simulate it:  {dbk['sweep']}" in text
    kinds = "sliding window" if sliding else "fixed window"
    assert f", {kinds}, clock skew" in text and ", fixed (assumed) window, clock skew" in text
    assert orjson.loads(render(found, as_json=True))["nobb"]["limit"] == 30


async def test_probe_without_rate_headers_uses_the_configured_rate() -> None:
    """No rate headers: said plainly, and the sweep line keeps the configured rate ("0")."""
    clock = FakeClock(start=1_796_000_003.0)
    async with Simulator(SimSettings(nobb_items=50, rate_limit=0), clock=clock.time) as sim:
        found = await _driven(clock, probe(_config(sim.url), ["nobb"], clock=clock))
    f = found["nobb"]
    assert (f["limit"], f["family"], f["requests"]) == (None, None, 3)
    assert f["sweep"] == "harvester bench --sweep --rate-limit 0 --latency-ms 0"
    text = render(found)
    assert "  limit         no rate headers: the server announced no limit\n" in text
    assert (
        "  headers       no rate headers; nothing is paced (beyond the ceiling) unless a 429 "
        "shows a quota\n" in text
    )


async def test_probe_of_an_absent_section_is_a_config_error() -> None:
    """probe dbk with no [dbk] section names the missing section."""
    with pytest.raises(ConfigError, match=r"no \[dbk\] section"):
        await probe(Config(nobb=None, dbk=None), ["dbk"])


def test_probe_command_line() -> None:
    """harvester probe [nobb] [dbk] --config FILE [--json]."""
    args = build_parser().parse_args(["probe", "nobb", "dbk", "--config", "c.toml", "--json"])
    assert (args.command, args.sources, args.json) == ("probe", ["nobb", "dbk"], True)
    assert build_parser().parse_args(["probe", "--config", "c.toml"]).sources == []


def test_probe_of_an_unknown_source_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """harvester probe ftp: exit 2 naming the source, nothing fetched."""
    from harvester.cli import main

    assert main(["probe", "ftp", "--config", "c.toml"]) == 2
    assert "unknown source 'ftp'" in capsys.readouterr().err
