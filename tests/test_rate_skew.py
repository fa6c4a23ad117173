"""A server clock far from ours, and our monotonic clock below zero: no wait comes of either.

Default NOBB config over real sockets, on a fake clock whose monotonic time starts at minus 16
days (``time.monotonic``'s origin is unspecified; nothing may take 0 for "long ago"), against a
server whose clock leads or lags ours by a day: with no rate headers and no limit, with
announced headers, and with a hidden quota whose 429s carry ``Retry-After`` as an HTTP date.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from harvester.config import NobbConfig, OutputConfig, Secret
from harvester.engine.clock import FakeClock
from harvester.output import read_lines
from harvester.progress import Progress
from harvester.run import run_source
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.nobb import NobbSource
from tests.test_rate_policies import _driven

DAY = 86_400.0
ORIGIN = -16 * DAY  # our monotonic clock's reading when the dump starts


async def _dump(settings: SimSettings, tmp: Path, *, wall: float
                ) -> tuple[Simulator, dict[str, Any], list[int], float]:  # fmt: skip
    """A default-config NOBB dump; the manifest, the keys and the (fake) seconds it took."""
    clock = FakeClock(start=wall, origin=ORIGIN)
    async with Simulator(settings, clock=clock.time) as sim:
        cfg = NobbConfig(base_url=sim.url, username=Secret("harvester"),
                         password=Secret("harvester"))  # fmt: skip
        source = NobbSource(cfg, clock=clock)
        result = await _driven(clock, source, run_source(
            source, mode="dump", out_dir=tmp, output=OutputConfig(compression="none"),
            config_digest="t", progress=Progress(source="nobb"), clock=clock,
        ))  # fmt: skip
        assert result.exit_code == 0
        manifest = orjson.loads((result.run_dir / "manifest.json").read_bytes())
        keys = [orjson.loads(line)["nobbNumber"] for line in read_lines(result.run_dir)]
        return sim, manifest, keys, clock.monotonic() - ORIGIN


@pytest.mark.parametrize("lead", [DAY, -DAY], ids=["server a day ahead", "a day behind"])
async def test_no_headers_no_limit_never_waits(tmp_path: Path, lead: float) -> None:
    """No rate headers, no limit, the server's Date a day off ours: not one second waited."""
    # With no limit the simulator's Date is the real time: our wall clock is set off it.
    settings = SimSettings(nobb_items=3000, rate_limit=0, seed=3)
    sim, manifest, keys, took = await _dump(settings, tmp_path, wall=time.time() - lead)
    assert sorted(keys) == sim.nobb_keys()
    rl = manifest["rate_limit"]
    assert (rl["learned_from"], rl["429s"], rl["waited_seconds"]) == (None, 0, 0)
    assert abs(rl["skew"] - lead) < 5
    assert took < 1.0


@pytest.mark.parametrize("lead", [DAY, -DAY], ids=["server a day ahead", "a day behind"])
async def test_announced_policy_with_skew_is_followed(tmp_path: Path, lead: float) -> None:
    """Rate headers (UNIX-time resets) from a server a day off: no 429, paced at the quota."""
    settings = SimSettings(nobb_items=3000, rate_limit=4, rate_window=1.0, seed=3,
                           clock_skew=lead)  # fmt: skip
    sim, manifest, keys, took = await _dump(settings, tmp_path, wall=1_796_000_000.0)
    assert sorted(keys) == sim.nobb_keys()
    rl = manifest["rate_limit"]
    assert (rl["learned_from"], rl["limit"], rl["skew"], rl["429s"]) == ("headers", 4, lead, 0)
    # Paced at 4 per second, not a day late: every request within its window's quota.
    assert took <= rl["requests"] / 4 + 2.0, (took, rl)


@pytest.mark.parametrize("lead", [DAY, -DAY], ids=["server a day ahead", "a day behind"])
async def test_hidden_quota_with_dated_retry_after_and_skew(tmp_path: Path, lead: float) -> None:
    """A hidden quota whose 429s say Retry-After as an HTTP date on a clock a day off ours:
    each wait ends at the window's end on the server's clock, never a day later."""
    settings = SimSettings(nobb_items=3000, rate_limit=2, rate_window=2.0, seed=3,
                           rate_hidden=True, retry_after="date", clock_skew=lead)  # fmt: skip
    sim, manifest, keys, took = await _dump(settings, tmp_path, wall=1_796_000_000.0)
    assert sorted(keys) == sim.nobb_keys()
    rl = manifest["rate_limit"]
    # At most the walks in flight when the first refusal came (the default concurrency), then few.
    walks = NobbConfig(username=Secret("u"), password=Secret("p")).concurrency
    assert rl["learned_from"] == "429" and 1 <= rl["429s"] <= walks + 0.15 * rl["requests"], rl
    assert abs(rl["skew"] - lead) < 2
    # 2 requests per 2 s window: the dump takes about a window per two requests, not a day.
    assert took <= rl["requests"] * 1.0 + 10.0, (took, rl)
