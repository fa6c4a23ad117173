"""Dumps over real sockets, default config, against servers that announce no rate limit.

Each server sends no rate-limit headers at all: either it has no limit (nothing may be paced
beyond the configured concurrency), or it enforces a quota shown only by its 429s, with
``Retry-After`` in seconds, as an HTTP date or not at all, fixed or sliding, falling or rising
part-way through the run. The harvester runs ``rate_limit`` left at "auto" (and once with a
ceiling), on the fake clock the simulator shares (``test_rate_policies._driven``); every dump
must be exact and its manifest must say what was learned.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from harvester.engine.clock import FakeClock
from harvester.engine.http import HttpClient, HttpSettings, Request
from harvester.engine.limiter import RateLimiter
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.test_rate_policies import _nobb_dump, _seconds, _settings

#: (label, simulator settings) for each reading of a quota nobody announces.
HIDDEN: dict[str, dict[str, Any]] = {
    "Retry-After seconds": {"retry_after": "seconds"},
    "Retry-After date": {"retry_after": "date"},
    "no Retry-After": {},
    "sliding, Retry-After seconds": {"retry_after": "seconds", "rate_sliding": True},
    "drops to 3 after 20 requests": {"retry_after": "seconds", "rate_change_after": 20,
                                     "rate_change_to": 3},
    "rises to 12 after 20 requests": {"retry_after": "seconds", "rate_change_after": 20,
                                      "rate_change_to": 12},
}  # fmt: skip


@pytest.fixture
def most_in_flight(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The most requests any limiter let through at once during the test."""
    seen = [0]
    slot = RateLimiter.slot

    @asynccontextmanager
    async def spied(self: RateLimiter):  # type: ignore[no-untyped-def]
        async with slot(self):
            seen[0] = max(seen[0], self.in_flight)
            yield

    monkeypatch.setattr(RateLimiter, "slot", spied)
    return seen


async def test_no_headers_no_limit_is_not_paced(tmp_path: Path, most_in_flight: list[int]) -> None:
    """No rate headers and no 429: exact, no wait at all, as many requests in flight as walks."""
    sim, manifest, keys = await _nobb_dump(_settings(rate_limit=0), tmp_path, None)
    assert sorted(keys) == sim.nobb_keys()
    rl = manifest["rate_limit"]
    assert (rl["learned_from"], rl["limit"], rl["kind"], rl["429s"]) == (None, None, None, 0)
    assert rl["waited_seconds"] == 0
    assert _seconds(manifest["finished"]) - _seconds(manifest["started"]) < 1.0  # fake clock
    assert most_in_flight[0] == 4  # nobb.concurrency in the dump's config


async def test_no_headers_ceiling_still_holds(tmp_path: Path) -> None:
    """rate_limit "2/s" against a server with no headers and no limit: 0.5 s between requests."""
    sim, manifest, keys = await _nobb_dump(_settings(rate_limit=0), tmp_path, "2/s")
    assert sorted(keys) == sim.nobb_keys()
    took = _seconds(manifest["finished"]) - _seconds(manifest["started"])
    assert took >= (sim.stats["nobb_requests"] - 1) * 0.5 - 1.0
    assert manifest["rate_limit"]["ceiling"] == "2/1s"


@pytest.mark.parametrize("label", list(HIDDEN))
async def test_hidden_quota_is_learned_from_429s(tmp_path: Path, label: str) -> None:
    """A quota shown only by 429s: exact dump, the manifest says it was learned from 429s, and
    refusals stay few (no 429 storm)."""
    settings = _settings(rate_hidden=True, nobb_items=4000, **HIDDEN[label])
    sim, manifest, keys = await _nobb_dump(settings, tmp_path, None)
    assert sorted(keys) == sim.nobb_keys()
    rl = manifest["rate_limit"]
    assert rl["learned_from"] == "429" and rl["family"] is None
    assert rl["429s"] == sim.stats["nobb_429"] >= 1
    assert rl["refused_share"] == round(rl["429s"] / rl["requests"], 4)
    assert rl["429s"] <= 4 + 0.15 * rl["requests"], rl  # the first refusal's 4 in flight, then few
    if "drops" in label:  # paced below the new quota (3 per 2 s) by the end
        assert rl["rate"] <= 1.5, rl


async def _ask(limiter: RateLimiter, http: HttpClient, clock: FakeClock) -> int:
    """One NOBB request through ``limiter`` (which must let it go at once); its status."""
    now = clock.monotonic()
    assert limiter.policy.next_allowed(now, 0) == pytest.approx(now)
    async with limiter.slot(), http.stream(_PAGE) as resp:
        await resp.read()
        limiter.observe(resp.headers, resp.status)
    if resp.status == 429:
        limiter.penalize(None)
    return resp.status


_PAGE = Request(method="GET", url="/api/v2/items", params=(("pageSize", "1"),),
                headers=(("Authorization", "Basic aGFydmVzdGVyOmhhcnZlc3Rlcg=="),),
                label="page")  # fmt: skip


async def test_a_whole_second_retry_after_is_tried_half_way() -> None:
    """20 per fixed 2 s window, the 21st request 0.3 s into a window ending 1.7 s later,
    refused with Retry-After "2": the next request goes half-way through its bounds (1.5 s on),
    is refused ("1"), the next at 1.75 s is allowed; the end is then known to within 0.25 s."""
    clock = FakeClock(start=1_796_000_000.3)  # windows end on even seconds of the wall clock
    settings = SimSettings(nobb_items=50, rate_limit=20, rate_window=2.0, rate_hidden=True,
                           retry_after="seconds")  # fmt: skip
    limiter = RateLimiter.from_setting("auto", clock=clock)
    async with (
        Simulator(settings, clock=clock.time) as sim,
        HttpClient(HttpSettings(), base_url=sim.url) as http,
    ):
        assert [await _ask(limiter, http, clock) for _ in range(21)] == [200] * 20 + [429]
        assert limiter.policy.next_allowed(0.0, 0) == pytest.approx(1.5)
        await clock.advance(1.5)
        assert await _ask(limiter, http, clock) == 429
        assert limiter.policy.next_allowed(1.5, 0) == pytest.approx(1.75)
        await clock.advance(0.25)
        assert await _ask(limiter, http, clock) == 200
    assert limiter.policy.hidden.ends.ends == [(1.5, 1.75)]
    assert limiter.report()["429s"] == 2
