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
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from harvester.config import NobbConfig, OutputConfig, Secret
from harvester.progress import Progress
from harvester.run import run_source
from harvester.sim.server import Simulator
from harvester.sim.settings import DEFAULT_NOW, SimSettings
from harvester.sources.nobb import NobbSource


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
            f"({len(cut)} cut), {clock.monotonic():.1f} simulated s"
        ), requests


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_token_life")
    p.add_argument("--items", type=int, default=12_000)
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--ttl", type=float, default=2.0, help="the short token life, seconds")
    p.add_argument("--page-ms", type=float, default=250.0, help="one page's time")
    p.add_argument("--walks", type=int, default=4, help="walks in flight (nobb.concurrency)")
    p.add_argument("--rounds", type=int, default=5, help="dumps per token life, interleaved")
    a = p.parse_args()
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
