"""NOBB rate-limit headers from a hostile server: never a wait of days, the dump stays exact.

``x-ratelimit-remaining: 0`` with a reset in the past, days or years away, ``inf`` or ``nan``,
and a 429 whose Retry-After is 10 days or a date in 2100: the limiter waits at most its
one-hour cap (``limiter.py``), once, and the run goes on. Waits run on a ``JumpClock``, so the
test takes no wall time and ``slept`` shows what the harvester would have waited.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from harvester.sim.server import Simulator
from tests.expected import served_nobb, written_nobb
from tests.front import Front, Upstream
from tests.test_bad_input_nobb import SETTINGS, _later_asc_page, _run


@pytest.mark.parametrize(
    ("reset", "capped"),
    [("past", 0), ("in 10 days", 1), ("31 years", 1), ("inf", 1), ("nan", 0)],
)
async def test_an_absurd_ratelimit_reset(tmp_path: Path, reset: str, capped: int) -> None:
    """remaining=0 with a reset in the past or days away: at most one capped wait, exact records."""
    now = datetime.now(UTC).timestamp()
    value = {"past": str(int(now - 86_400)), "in 10 days": str(int(now + 864_000)),
             "31 years": "999999999", "inf": "inf", "nan": "nan"}[reset]  # fmt: skip

    async def spoil(request: web.Request, up: Upstream) -> web.Response | None:
        if not _later_asc_page(request) or front.spoiled:
            return None
        headers = {**up.headers, "x-ratelimit-limit": "600", "x-ratelimit-remaining": "0",
                   "x-ratelimit-reset": value}  # fmt: skip
        return web.Response(body=up.body, headers=headers)

    async with Simulator(SETTINGS) as sim, Front(sim, spoil) as front:
        result, source = await _run(front.url, tmp_path)
        served = await served_nobb(sim, SETTINGS)
    assert front.spoiled and result.exit_code == 0
    assert written_nobb(result.run_dir) == served
    assert source._limiter.capped_resets == capped
    slept = source.clock.slept  # type: ignore[attr-defined]
    assert math.fsum(slept) <= 3600 * capped + 1  # never days: the wait is capped at an hour
    assert max(slept, default=0.0) == pytest.approx(3600.0 if capped else 0.0, abs=1)


@pytest.mark.parametrize("retry_after", ["864000", "Fri, 31 Dec 2100 23:59:59 GMT"])
async def test_a_429_with_an_absurd_retry_after(tmp_path: Path, retry_after: str) -> None:
    """A 429 asking to come back in 10 days or in 2100: one wait capped at an hour, then exact."""

    async def spoil(request: web.Request, up: Upstream) -> web.Response | None:
        if not _later_asc_page(request) or front.spoiled:
            return None
        return web.json_response({"message": "Too many requests"}, status=429,
                                 headers={"Retry-After": retry_after})  # fmt: skip

    async with Simulator(SETTINGS) as sim, Front(sim, spoil) as front:
        result, source = await _run(front.url, tmp_path)
        served = await served_nobb(sim, SETTINGS)
    assert len(front.spoiled) == 1 and result.exit_code == 0
    assert written_nobb(result.run_dir) == served
    slept = source.clock.slept  # type: ignore[attr-defined]
    # The wait is read on a real clock: a loaded machine takes a few ms off it.
    assert max(slept) == pytest.approx(3600.0, abs=1) and math.fsum(slept) <= 3600 + 1
