"""The simulator's quotas nobody announces, over a real socket: hidden limits, Retry-After, and
limits that change mid-run (each a flag, off by default)."""

from __future__ import annotations

import email.utils
from collections.abc import Mapping

import aiohttp
import pytest

from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.clocks import T0, Wall
from tests.harness import NOBB, basic_auth


async def _answers(sim: Simulator, http: aiohttp.ClientSession, n: int,
                   ) -> list[tuple[int, Mapping[str, str]]]:  # fmt: skip
    """``n`` NOBB requests in a row: each answer's status and headers (any letter case)."""
    out: list[tuple[int, Mapping[str, str]]] = []
    for _ in range(n):
        async with http.get(sim.url + NOBB, headers=basic_auth(sim.settings)) as r:
            out.append((r.status, r.headers.copy()))
    return out


async def test_hidden_quota_sends_no_rate_headers(wall: Wall, http: aiohttp.ClientSession) -> None:
    """--rate-hidden: 2 allowed per 10 s window, then 429; no answer names the limit, each has
    a Date, and a 429 carries no Retry-After unless asked."""
    s = SimSettings(nobb_items=20, dbk_products=0, rate_limit=2, rate_window=10, rate_hidden=True)
    async with Simulator(s, clock=wall) as sim:
        answers = await _answers(sim, http, 3)
    assert [status for status, _ in answers] == [200, 200, 429]
    for _, headers in answers:
        assert not [h for h in headers if "ratelimit" in h.lower()]
        assert email.utils.parsedate_to_datetime(headers["Date"]).timestamp() == int(T0)
    assert "Retry-After" not in answers[2][1]


@pytest.mark.parametrize(("style", "sliding", "expected"), [
    ("seconds", False, "7"),  # the window ends at 1_790_000_010, 6.5 s on: rounded up
    ("date", False, email.utils.formatdate(1_790_000_010, usegmt=True)),
    ("seconds", True, "10"),  # the oldest counted request leaves 10 s after it came
])  # fmt: skip
async def test_a_429_says_when_to_come_back(
    wall: Wall, http: aiohttp.ClientSession, style: str, sliding: bool, expected: str
) -> None:
    """--retry-after seconds|date: the 429 names the window's end (fixed) or when the oldest
    counted request leaves (sliding)."""
    s = SimSettings(nobb_items=20, dbk_products=0, rate_limit=1, rate_window=10, rate_hidden=True,
                    retry_after=style, rate_sliding=sliding)  # type: ignore[arg-type]  # fmt: skip
    async with Simulator(s, clock=wall) as sim:
        (ok, _), (refused, headers) = await _answers(sim, http, 2)
    assert (ok, refused, headers["Retry-After"]) == (200, 429, expected)


async def test_a_limit_can_drop_or_rise_mid_run(wall: Wall, http: aiohttp.ClientSession) -> None:
    """--rate-change-after 2 --rate-change-to 4: two requests at the old limit (1), then 4."""
    s = SimSettings(nobb_items=20, dbk_products=0, rate_limit=1, rate_window=10,
                    rate_change_after=2, rate_change_to=4)  # fmt: skip
    async with Simulator(s, clock=wall) as sim:
        answers = await _answers(sim, http, 6)
    assert [status for status, _ in answers] == [200, 429, 200, 200, 200, 429]
    assert [h["x-ratelimit-limit"] for _, h in answers] == ["1", "1", "4", "4", "4", "4"]


def test_bad_retry_after_is_refused() -> None:
    """An unknown Retry-After style is a clear error."""
    with pytest.raises(ValueError, match="retry_after must be none, seconds or date"):
        SimSettings(retry_after="soon")  # type: ignore[arg-type]
