"""The simulator must never be the bottleneck: raw read speed, start-up time and memory.

Starts ``harvester simulate`` as a subprocess (its own core), then a raw client walks every
NOBB page with pageSize 10000 reading the body in 64 KB chunks (no parsing, no compression, no
rate limit) and reads DBK windows the same way. Prints MB/s and items/s, and for a 1,000,000-item
/ 500,000-product catalogue the start-up time and the simulator's peak RSS.

    python -m benchmarks.bench_sim [--items 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

AUTH = {
    "Authorization": "Basic " + base64.b64encode(b"harvester:harvester").decode(),
    "Accept-Encoding": "identity",
}


def start(*flags: str) -> tuple[subprocess.Popen[str], str, float]:
    t = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harvester", "simulate", "--port", "0", "--rate-limit", "0", *flags],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.split()[-1], time.perf_counter() - t


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def walk_nobb(url: str) -> tuple[int, int, float]:
    size = pages = 0
    token = None
    t = time.perf_counter()
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        while True:
            params = {"pageSize": "10000", **({"pageToken": token} if token else {})}
            async with http.get(url + "/api/v2/items", params=params, headers=AUTH) as r:
                async for chunk in r.content.iter_chunked(1 << 16):
                    size += len(chunk)
                token = r.headers.get("x-forwardToken")
            pages += 1
            if token is None:
                return size, pages, time.perf_counter() - t


async def read_dbk(url: str, windows: int) -> tuple[int, float]:
    size = 0
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        body = {"username": "harvester", "password": "harvester"}
        async with http.post(url + "/dwapi/users/authenticate", json=body) as r:
            token = (await r.json())["token"]
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
        t = time.perf_counter()
        for year in range(2026 - windows, 2026):
            params = {"updatedFrom": f"{year}0101", "updatedTo": f"{year + 1}0101"}
            async with http.get(
                url + "/onix/document/export/v3.1", params=params, headers=headers
            ) as r:
                async for chunk in r.content.iter_chunked(1 << 16):
                    size += len(chunk)
        return size, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=200_000)
    args = p.parse_args()
    proc, url, startup = start("--nobb-items", str(args.items), "--dbk-products", "50000")
    try:
        size, pages, secs = asyncio.run(walk_nobb(url))
        print(f"NOBB raw walk: {args.items:,} items in {pages} pages of 10000, {size / 1e6:.0f} MB "
              f"in {secs:.1f} s = {size / 1e6 / secs:.0f} MB/s, {args.items / secs:,.0f} items/s "
              f"(target >= 60 MB/s); simulator start-up {startup:.1f} s, "
              f"peak RSS {peak_rss_mb(proc.pid):.0f} MB")  # fmt: skip
        size, secs = asyncio.run(read_dbk(url, 8))
        print(f"DBK raw read: 8 yearly windows (capped at 2000), {size / 1e6:.1f} MB "
              f"= {size / 1e6 / secs:.0f} MB/s of ONIX")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait()
    proc, url, startup = start("--nobb-items", "1000000", "--dbk-products", "500000")
    try:
        print(f"1,000,000 NOBB items + 500,000 DBK products: listening after {startup:.1f} s, "
              f"peak RSS {peak_rss_mb(proc.pid):.0f} MB (target < 1024 MB)")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
