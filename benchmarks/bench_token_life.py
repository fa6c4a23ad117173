"""NOBB walks longer than their tokens' life: what cutting partitions costs, side by side.

Dumps one catalogue twice in one process against the in-process simulator, once with tokens
that outlive every walk and once with tokens living ``--ttl`` seconds, on a clock that moves only
as the simulator serves requests (``--page-ms`` per page, ``--walks`` in flight), so the numbers
are the same on any machine, however loaded, up to the order in which concurrent requests reach
the simulator (which moves cuts a little). Prints, for each round: exit code, records,
requests, expired tokens, the token life learned, partitions (and how many were cut) and the
simulated seconds; then, per token life, the spread of requests over the rounds and the median's
ratio to one pass with long-lived tokens.

    python -m benchmarks.bench_token_life [--items 12000] [--page-size 50] [--ttl 2] [--rounds 5]

``--real-time`` runs instead what a user meets: a simulator in its own process whose tokens live
``--ttl`` seconds and that answers each request after ``--page-ms`` of real time, with no rate
headers and no limit, harvested with the default config but ``page_size``; each dump is cut off
after ``--cap`` seconds (default 120), so the run stays bounded. Prints, per round: exit code,
records (exact or not), wall seconds (target <= 60), requests, the share of them that were
``x-totalHits`` probes (target <= 25 %), expired tokens met and partitions cut.

    python -m benchmarks.bench_token_life --real-time [--rounds 1] [--cap 120]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path
from typing import Any

from harvester.config import NobbConfig, OutputConfig, Secret
from harvester.progress import Progress
from harvester.run import run_source
from harvester.sim.server import Simulator
from harvester.sim.settings import DEFAULT_NOW, SimSettings
from harvester.sources.nobb import NobbSource
from harvester.sources.nobb_plan import PartitionPlanner


class PagedClock:
    """Time that passes only as the simulator serves NOBB requests, ``per_request`` s each."""

    def __init__(self, per_request: float) -> None:
        self.per_request = per_request
        self.sim: Simulator | None = None
        self.offset = 0.0

    def monotonic(self) -> float:
        served = self.sim.stats["nobb_requests"] if self.sim is not None else 0
        return served * self.per_request + self.offset

    def time(self) -> float:
        return DEFAULT_NOW.timestamp() + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        self.offset += max(0.0, seconds)
        await asyncio.sleep(0)


async def dump(
    items: int, page_size: int, ttl: float, page_ms: float, walks: int
) -> tuple[str, int]:
    """One dump; its line of numbers and its requests."""
    probes = count_probes()
    clock = PagedClock(per_request=page_ms / 1000 / walks)
    settings = SimSettings(nobb_items=items, rate_limit=0, seed=5, token_ttl=ttl)
    async with Simulator(settings, clock=clock.time) as sim:
        clock.sim = sim
        cfg = NobbConfig(base_url=sim.url, username=Secret("harvester"),
                         password=Secret("harvester"), rate_limit="0", page_size=page_size,
                         concurrency=walks)  # fmt: skip
        with tempfile.TemporaryDirectory() as out:
            result = await run_source(
                NobbSource(cfg, clock=clock), mode="dump", output=OutputConfig(),
                out_dir=Path(out), config_digest="bench", progress=Progress(source="nobb"),
                clock=clock,
            )  # fmt: skip
        parts = result.manifest.partitions
        walked = [p for p in parts if not p.startswith("catch-up")]
        cut = [p for p, r in parts.items() if isinstance(r, dict) and r.get("split_into")]
        tokens = result.manifest.checks.get("tokens")
        life = tokens.get("life_at_most") if isinstance(tokens, dict) else None
        requests = int(sim.stats["nobb_requests"])
        return (
            f"token life {ttl:g} s: exit {result.exit_code}, {result.manifest.records:,} records, "
            f"{requests} requests, {sim.stats['expired_tokens']} expired tokens (life learned: "
            f"{'-' if life is None else f'<= {life:.2f} s'}), {len(walked)} partitions "
            f"({len(cut)} cut), {probes[0]} probes ({probes[0] / requests:.0%} of the requests), "
            f"{clock.monotonic():.1f} simulated s"
        ), requests


_PLAIN_PROBE = PartitionPlanner.probe


def count_probes() -> list[int]:
    """From now on, count the x-totalHits probes every run's planner sends (one counter: a
    later call replaces it)."""
    probes = [0]
    plain = _PLAIN_PROBE

    def counting(self: PartitionPlanner, ctx: Any, times: list[float] | None = None) -> Any:
        inner = plain(self, ctx, times)

        async def probe(lo: Any, hi: Any) -> int:
            probes[0] += 1
            return await inner(lo, hi)

        return probe

    PartitionPlanner.probe = counting  # type: ignore[method-assign]
    return probes


async def real_time(url: str, items: int, page_size: int, cap: float) -> str:
    """One dump in real time with the default config but ``page_size``; its line."""
    import time

    probes = count_probes()
    cfg = NobbConfig(base_url=url, username=Secret("harvester"), password=Secret("harvester"),
                     page_size=page_size)  # fmt: skip
    progress = Progress(source="nobb")
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory() as out:
            result = await asyncio.wait_for(run_source(
                NobbSource(cfg), mode="dump", output=OutputConfig(), out_dir=Path(out),
                config_digest="bench", progress=progress,
            ), cap)  # fmt: skip
    except TimeoutError:
        return (f"NOT finished within {cap:g} s (target <= 60 s): {progress.records:,} records, "
                f"{progress.requests} requests, {probes[0]} of them probes")  # fmt: skip
    took = time.monotonic() - t0
    parts = result.manifest.partitions
    cut = [p for p, r in parts.items() if isinstance(r, dict) and r.get("split_into")]
    tokens = result.manifest.checks.get("tokens")
    expired = tokens.get("expired") if isinstance(tokens, dict) else None
    exact = "exact" if result.manifest.records == items and result.exit_code == 0 else "NOT exact"
    share = probes[0] / max(1, progress.requests)
    return (f"exit {result.exit_code}, {result.manifest.records:,} records ({exact}), {took:.1f} s "
            f"wall (target <= 60), {progress.requests} requests, {probes[0]} probes = "
            f"{share:.0%} (target <= 25 %), {expired} expired chains met, {len(cut)} partitions "
            "cut")  # fmt: skip


def real_time_main(a: argparse.Namespace) -> None:
    """``--real-time``: the simulator in its own process, real latency, bounded runs."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "harvester", "simulate", "--port", "0", "--rate-limit", "0",
         "--nobb-items", str(a.items), "--token-ttl", str(a.ttl), "--latency-ms",
         str(a.page_ms), "--seed", "5", "--now", DEFAULT_NOW.isoformat()],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[-1]
    print(f"real time: {a.items:,} items, pageSize {a.page_size}, tokens living {a.ttl:g} s, "
          f"{a.page_ms:g} ms latency, no rate headers, default config; each dump capped at "
          f"{a.cap:g} s")  # fmt: skip
    try:
        for r in range(max(1, a.rounds)):
            line = asyncio.run(real_time(url, a.items, a.page_size, a.cap))
            print(f"round {r + 1}: {line}", flush=True)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_token_life")
    p.add_argument("--items", type=int, default=12_000)
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--ttl", type=float, default=2.0, help="the short token life, seconds")
    p.add_argument("--page-ms", type=float, default=250.0, help="one page's time")
    p.add_argument("--walks", type=int, default=4, help="walks in flight (nobb.concurrency)")
    p.add_argument("--rounds", type=int, default=5, help="dumps per token life, interleaved")
    p.add_argument("--real-time", action="store_true", help="a real simulator, real latency")
    p.add_argument("--cap", type=float, default=120.0, help="--real-time: seconds per dump")
    a = p.parse_args()
    if a.real_time:
        real_time_main(a)
        return
    print(f"{a.items:,} items, pageSize {a.page_size}, {a.page_ms:g} ms a page, {a.walks} walks")
    counts: dict[float, list[int]] = {7200.0: [], a.ttl: []}
    for r in range(max(1, a.rounds)):
        for ttl in counts:
            line, requests = asyncio.run(dump(a.items, a.page_size, ttl, a.page_ms, a.walks))
            counts[ttl].append(requests)
            print(f"round {r + 1}: {line}", flush=True)
    one_pass = statistics.median(counts[7200.0])
    for ttl, seen in counts.items():
        print(f"token life {ttl:g} s: requests min {min(seen)}, median {statistics.median(seen):g}"
              f", max {max(seen)} over {len(seen)} rounds; median / one pass "
              f"{statistics.median(seen) / one_pass:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
