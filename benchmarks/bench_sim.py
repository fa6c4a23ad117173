"""The simulator must never be the bottleneck: raw read speed, start-up time and memory.

Starts ``python -m harvester.sim.cli`` as a subprocess (its own process, its own core), then a raw
aiohttp client walks every NOBB page with pageSize 10000, identity encoding, reading each body with
``resp.content.iter_chunked(1 << 16)`` and parsing nothing. Prints bytes, MB/s, items/s and the
simulator's peak RSS (``VmHWM``), then reads DBK yearly windows the same way. Finally starts a
1,000,000-item simulator and prints the time until its listening line and its RSS.

Targets (from the issue): >= 60 MB/s raw client read at pageSize 10000; 1M items start in seconds
and stay under 1 GB.

    python -m benchmarks.bench_sim [--items 200000] [--big-items 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

NOBB_AUTH = {
    "Authorization": "Basic " + base64.b64encode(b"harvester:harvester").decode(),
    "Accept-Encoding": "identity",
}
CHUNK = 1 << 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Started:
    """A running simulator process, its base URL and how long it took to say it listens."""

    proc: subprocess.Popen[str]
    url: str
    startup: float


def start(*flags: str) -> Started:
    """Start the simulator with ``flags`` and wait for its one ``listening on URL`` line."""
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "harvester.sim.cli", "--port", "0", "--rate-limit", "0",
           "--now", "2026-11-20T00:00:00Z", *flags]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on http://"):
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return Started(proc=proc, url=line.split()[-1], startup=time.perf_counter() - t)


def stop(sim: Started) -> None:
    sim.proc.terminate()
    sim.proc.wait(timeout=30)


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            out[name] = int(value.split()[0]) / 1024
    return out


async def walk_nobb(
    url: str,
    each: Callable[[bytes], object] | None = None,
    page_end: Callable[[], object] | None = None,
) -> tuple[int, int, int, float]:
    """Bytes, pages and items of a full raw walk with pageSize 10000, and its seconds; ``each``
    (if given) is called with every chunk read, ``page_end`` after each page's last chunk."""
    size = pages = 0
    items = -1
    token: str | None = None
    t = time.perf_counter()
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        while True:
            params = {"pageSize": "10000", **({"pageToken": token} if token else {})}
            async with http.get(url + "/api/v2/items", params=params, headers=NOBB_AUTH) as r:
                r.raise_for_status()
                async for chunk in r.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if each is not None:
                        each(chunk)
                if page_end is not None:
                    page_end()
                token = r.headers.get("x-forwardToken")
                items = int(r.headers["x-totalHits"])
            pages += 1
            if token is None:
                return size, pages, items, time.perf_counter() - t


async def read_dbk(url: str, years: range) -> tuple[int, float]:
    """Bytes of the yearly ONIX windows in ``years`` read raw, and the seconds it took."""
    size = 0
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        body = {"username": "harvester", "password": "harvester"}
        async with http.post(url + "/dwapi/users/authenticate", json=body) as r:
            token = (await r.json())["token"]
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
        t = time.perf_counter()
        for year in years:
            params = {"updatedFrom": f"{year}0101", "updatedTo": f"{year + 1}0101"}
            path = url + "/onix/document/export/v3.1"
            async with http.get(path, params=params, headers=headers) as r:
                async for chunk in r.content.iter_chunked(CHUNK):
                    size += len(chunk)
        return size, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=200_000, help="NOBB items for the walk")
    p.add_argument("--big-items", type=int, default=1_000_000, help="NOBB items for start-up")
    args = p.parse_args()

    sim = start("--nobb-items", str(args.items), "--dbk-products", "50000")
    try:
        size, pages, items, secs = asyncio.run(walk_nobb(sim.url))
        mem = memory_mb(sim.proc.pid)
        print(
            f"NOBB raw walk, {items:,} items in {pages} pages of 10000 (identity):\n"
            f"  {size:,} bytes ({size / 1e6:.1f} MB) in {secs:.2f} s = "
            f"{size / 1e6 / secs:.1f} MB/s, {items / secs:,.0f} items/s (target >= 60 MB/s)\n"
            f"  simulator: start-up {sim.startup:.2f} s, RSS {mem['VmRSS']:.0f} MB, "
            f"peak RSS {mem['VmHWM']:.0f} MB"
        )
        size, secs = asyncio.run(read_dbk(sim.url, range(2018, 2026)))
        print(
            f"DBK raw read, 8 yearly windows (capped at 2000 products each): "
            f"{size:,} bytes in {secs:.2f} s = {size / 1e6 / secs:.1f} MB/s"
        )
    finally:
        stop(sim)

    sim = start("--nobb-items", str(args.big_items), "--dbk-products", "500000")
    try:
        mem = memory_mb(sim.proc.pid)
        print(
            f"{args.big_items:,} NOBB items + 500,000 DBK products: "
            f"listening after {sim.startup:.2f} s, "
            f"RSS {mem['VmRSS']:.0f} MB, peak RSS {mem['VmHWM']:.0f} MB (target < 1024 MB)"
        )
    finally:
        stop(sim)


if __name__ == "__main__":
    main()
