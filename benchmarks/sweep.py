"""Tuning sweep: which settings harvest fastest under a given rate limit and latency.

``python -m benchmarks --sweep --rate-limit 600/60s --latency-ms 80`` (or ``harvester bench``
with the same flags) starts, for each setting, a fresh simulator with that limit and latency and
runs one harvester dump against it in this process:

- NOBB: ``page_size`` 1000 and 10000 × ``concurrency`` 1, 2, 4, 8 (``two_ended`` when above 1,
  partitions sized from probes);
- DBK (a cold first dump, windows found by bisection): ``max_products_per_response`` 500, 1000,
  2000 (the simulator's cap is 2000) × ``concurrency`` 1, 2, 4.

The catalogue is sized so that a run needs a few seconds of the limit's requests, and a run
stops after ``CAP`` seconds (its items/s is then what it had written by then), so a sweep stays
within about three minutes. A limit with a long window (600/60s) is scaled to the same
sustained rate over a shorter window (50/5s): a long dump sees the sustained rate, and a short
sweep would otherwise see only the first window's burst. Each setting reports items/s,
requests and 429s; the fastest setting without a 429 (the lower concurrency within 5 % of it)
is printed as a config snippet for ``config.toml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.children import harvest_nobb
from benchmarks.suite import RESULTS, simulator, write_results
from harvester.config import parse_rate
from harvester.errors import HarvesterError

__all__ = ["Setting", "best", "run_sweep", "scaled", "snippet"]

CAP = 8.0
WINDOW_MAX = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """One measured setting of one source: its knobs and what it achieved."""

    source: str
    knobs: dict[str, int]
    items: int
    secs: float
    requests: int
    throttled: int

    @property
    def rate(self) -> float:
        return self.items / self.secs if self.secs else 0.0


def scaled(max_rate: float, period: float) -> tuple[int, float]:
    """The simulator's (limit, window) for a rate: same sustained rate, window ≤ 5 s."""
    window = min(period, WINDOW_MAX)
    return max(1, round(max_rate * window / period)), window


def best(settings: list[Setting]) -> Setting:
    """The fastest setting without 429s (else the fewest); within 5 % prefer less concurrency."""
    pool = [s for s in settings if s.throttled == 0] or [
        s for s in settings if s.throttled == min(x.throttled for x in settings)
    ]
    top = max(s.rate for s in pool)
    close = [s for s in pool if s.rate >= 0.95 * top]
    return min(close, key=lambda s: (s.knobs["concurrency"], -s.rate))


def snippet(rate: str, nobb: Setting | None, dbk: Setting | None, note: str) -> str:
    """The recommended settings as ``[nobb]``/``[dbk]`` TOML that ``load_config`` accepts."""
    lines = [f"# {note}"]
    if nobb is not None:
        c = nobb.knobs["concurrency"]
        lines += ["[nobb]", 'username = "${NOBB_USERNAME}"', 'password = "${NOBB_PASSWORD}"',
                  f'rate_limit = "{rate}"', f"page_size = {nobb.knobs['page_size']}",
                  f"concurrency = {c}", "partitions = 0",
                  f"two_ended = {'true' if c > 1 else 'false'}", ""]  # fmt: skip
    if dbk is not None:
        cap = dbk.knobs["max_products_per_response"]
        lines += ["[dbk]", 'username = "${DBK_USERNAME}"', 'password = "${DBK_PASSWORD}"',
                  f'rate_limit = "{rate}"', f"concurrency = {dbk.knobs['concurrency']}",
                  f"max_products_per_response = {cap}"]  # fmt: skip
    return "\n".join(lines).rstrip() + "\n"


async def _capped(run: Callable[[], Awaitable[dict[str, Any]]], records: Callable[[], int]
                  ) -> tuple[int, float]:  # fmt: skip
    """Run until done or ``CAP`` seconds; records written by then, and the seconds taken.

    A run still going at ``CAP`` is counted as it stood at that moment, then cancelled (it
    commits what is whole, as after SIGINT) and awaited.
    """
    t = time.perf_counter()
    task = asyncio.ensure_future(run())
    done, _ = await asyncio.wait({task}, timeout=CAP)
    secs = time.perf_counter() - t
    if task in done:
        return int(task.result()["n"]), secs
    n = records()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, HarvesterError):
        await task
    return n, secs


async def _nobb(url: str, page_size: int, concurrency: int, rate: str) -> Setting:
    from harvester.progress import Progress

    progress = Progress(source="nobb")
    with tempfile.TemporaryDirectory() as tmp:
        n, secs = await _capped(lambda: harvest_nobb(
            url, Path(tmp), page_size=page_size, concurrency=concurrency,
            two_ended=concurrency > 1, compression="none", rate_limit=rate, progress=progress,
        ), lambda: progress.records)  # fmt: skip
    return Setting(source="nobb", knobs={"page_size": page_size, "concurrency": concurrency},
                   items=n, secs=secs, requests=progress.requests,
                   throttled=progress.throttled)  # fmt: skip


async def _dbk(url: str, cap: int, concurrency: int, rate: str) -> Setting:
    from harvester.config import DbkConfig, OutputConfig, Secret
    from harvester.progress import Progress
    from harvester.run import run_source
    from harvester.sources.dbk import DbkSource

    cfg = DbkConfig(base_url=url, username=Secret("harvester"), password=Secret("harvester"),
                    rate_limit=rate, concurrency=concurrency, max_products_per_response=cap,
                    accept_encoding="identity")  # fmt: skip
    progress = Progress(source="dbk")

    async def run() -> dict[str, Any]:
        result = await run_source(DbkSource(cfg), mode="dump", out_dir=Path(tmp),
                                  output=OutputConfig(compression="none"),
                                  config_digest="sweep", progress=progress)  # fmt: skip
        return {"n": result.manifest.records}

    with tempfile.TemporaryDirectory() as tmp:
        n, secs = await _capped(run, lambda: progress.records)
    knobs = {"max_products_per_response": cap, "concurrency": concurrency}
    return Setting(source="dbk", knobs=knobs, items=n, secs=secs, requests=progress.requests,
                   throttled=progress.throttled)  # fmt: skip


def _measure(flags: list[str], run: Callable[[str], Coroutine[Any, Any, Setting]]) -> Setting:
    from harvester.cli import loop_factory

    with simulator(*flags) as url, asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(run(url))


def run_sweep(
    rate_limit: str,
    latency_ms: float,
    *,
    quick: bool = False,
    directory: Path = RESULTS,
    policy: list[str] | None = None,
) -> int:
    """Measure every setting, print them and the recommended snippet; write the JSON; exit 0.

    A malformed ``rate_limit`` raises ``ConfigError`` before anything starts. ``policy`` are
    further simulator flags for how the limit is announced (``--rate-headers``, ``--reset-style``,
    ``--clock-skew``, ``--rate-sliding``), as ``harvester probe`` prints them.
    """
    started = datetime.now(UTC)
    max_rate, period = parse_rate(rate_limit, key="--rate-limit")
    limit, window = scaled(max_rate, period)
    sim_rate = f"{limit}/{window:g}s"
    per_s = limit / window
    # Enough items for CAP seconds of 1000-item pages at the limit's rate.
    items = int(min(120_000, max(20_000, per_s * CAP * 1000)))
    products = 3_000 if quick else 15_000
    base = ["--rate-limit", str(limit), "--rate-window", str(window),
            "--latency-ms", str(latency_ms), *(policy or [])]  # fmt: skip
    print(
        f"sweep: limit {rate_limit} (simulated as {sim_rate}), {latency_ms:g} ms latency; "
        f"NOBB {items:,} items, DBK {products:,} products; each run capped at {CAP:g} s"
    )
    grid_nobb = [(p, c) for p in (1000, 10_000) for c in ((1, 4) if quick else (1, 2, 4, 8))]
    grid_dbk = [(m, c) for m in ((1000, 2000) if quick else (500, 1000, 2000))
                for c in ((1, 4) if quick else (1, 2, 4))]  # fmt: skip
    results: list[Setting] = []
    print(f"{'source':6s}  {'setting':46s}  {'items/s':>9s}  {'items':>7s}  {'secs':>5s}  "
          f"{'requests':>8s}  {'429s':>5s}")  # fmt: skip
    for page_size, conc in grid_nobb:
        flags = [*base, "--nobb-items", str(items), "--dbk-products", "0"]
        results.append(
            _measure(
                flags,
                functools.partial(_nobb, page_size=page_size, concurrency=conc, rate=sim_rate),
            )
        )
        _print(results[-1])
    for cap, conc in grid_dbk:
        flags = [*base, "--nobb-items", "0", "--dbk-products", str(products), "--no-bulk-second"]
        results.append(
            _measure(flags, functools.partial(_dbk, cap=cap, concurrency=conc, rate=sim_rate))
        )
        _print(results[-1])
    nobb = best([s for s in results if s.source == "nobb"])
    dbk = best([s for s in results if s.source == "dbk"])
    note = (
        f"measured by `harvester bench --sweep --rate-limit {rate_limit} "
        f"--latency-ms {latency_ms:g}`: NOBB {nobb.rate:,.0f} items/s, "
        f"DBK {dbk.rate:,.0f} products/s; 429s {nobb.throttled} and {dbk.throttled}"
    )
    print("\nrecommended:\n")
    print(snippet(rate_limit, nobb, dbk, note))
    extra = {"rate_limit": rate_limit, "simulated": sim_rate, "latency_ms": latency_ms,
             "settings": [{"source": s.source, **s.knobs, "items": s.items, "secs": s.secs,
                           "items_per_s": s.rate, "requests": s.requests,
                           "throttled": s.throttled} for s in results],
             "recommended": {"nobb": nobb.knobs, "dbk": dbk.knobs}}  # fmt: skip
    path = write_results([], {"sweep": True, "rate_limit": rate_limit, "latency_ms": latency_ms,
                              "quick": quick}, extra, started, directory)  # fmt: skip
    print(f"results: {path}")
    return 0


def _print(s: Setting) -> None:
    knobs = ", ".join(f"{k} {v}" for k, v in s.knobs.items())
    print(f"{s.source:6s}  {knobs:46s}  {s.rate:9,.0f}  {s.items:7,}  {s.secs:5.1f}  "
          f"{s.requests:8,}  {s.throttled:5,}", flush=True)  # fmt: skip
