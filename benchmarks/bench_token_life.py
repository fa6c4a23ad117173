"""NOBB walks longer than their tokens' life: what cutting partitions costs, side by side.

Dumps one catalogue twice in one process against the in-process simulator, once with tokens
that outlive every walk and once with tokens living ``--ttl`` seconds, on a clock that moves only
as the simulator serves requests (``--page-ms`` per page, ``--walks`` in flight), so the numbers
are the same on any machine, however loaded. Prints, for each: exit code, records, requests,
expired tokens, partitions (and how many were cut) and the simulated seconds.

    python -m benchmarks.bench_token_life [--items 12000] [--page-size 50] [--ttl 2]
"""

from __future__ import annotations

import argparse
import asyncio
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


async def dump(items: int, page_size: int, ttl: float, page_ms: float, walks: int) -> str:
    """One dump; its line of numbers."""
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
        return (
            f"token life {ttl:g} s: exit {result.exit_code}, {result.manifest.records:,} records, "
            f"{sim.stats['nobb_requests']} requests, {sim.stats['expired_tokens']} expired "
            f"tokens, {len(walked)} partitions ({len(cut)} cut), {clock.monotonic():.1f} "
            "simulated s"
        )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_token_life")
    p.add_argument("--items", type=int, default=12_000)
    p.add_argument("--page-size", type=int, default=50)
    p.add_argument("--ttl", type=float, default=2.0, help="the short token life, seconds")
    p.add_argument("--page-ms", type=float, default=250.0, help="one page's time")
    p.add_argument("--walks", type=int, default=4, help="walks in flight (nobb.concurrency)")
    a = p.parse_args()
    print(f"{a.items:,} items, pageSize {a.page_size}, {a.page_ms:g} ms a page, {a.walks} walks")
    for ttl in (7200.0, a.ttl):
        print(asyncio.run(dump(a.items, a.page_size, ttl, a.page_ms, a.walks)), flush=True)


if __name__ == "__main__":
    main()
