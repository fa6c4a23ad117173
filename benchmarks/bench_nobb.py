"""NOBB end to end against the simulator (a subprocess, its own core): harvester vs a naive loop.

1. No rate limit, no compression, pageSize 10000: harvester's dump (streaming splitter, sink
   with gzip-1 in a thread) vs the naive loop ``orjson.loads(await resp.read())`` then
   ``orjson.dumps`` per item to a file, one sequential walk. Items/s, ratio, peak RSS of each
   (each runs in a fresh process), interleaved A B A B, medians.
2. 200 ms latency: 4 partitions walked from both ends vs one sequential walk of the same
   catalogue (small pages, so the chain's latency is what binds). Ratio of wall times.

    python -m benchmarks.bench_nobb [--items 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

AUTH = {
    "Authorization": "Basic " + base64.b64encode(b"harvester:harvester").decode(),
    "Accept-Encoding": "identity",
}


def start(*flags: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harvester", "simulate", "--port", "0", "--rate-limit", "0", *flags],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()[-1]


async def naive(url: str, out: Path, page_size: int) -> int:
    n = 0
    token = None
    async with aiohttp.ClientSession() as http:
        with open(out, "wb") as fh:
            while True:
                params = {"pageSize": str(page_size), **({"pageToken": token} if token else {})}
                async with http.get(url + "/api/v2/items", params=params, headers=AUTH) as r:
                    items = orjson.loads(await r.read())
                    token = r.headers.get("x-forwardToken")
                for item in items:
                    fh.write(orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE))
                n += len(items)
                if token is None:
                    return n


async def harvester(
    url: str, out: Path, page_size: int, concurrency: int, partitions: int, compression: str
) -> int:
    from harvester.config import NobbConfig, OutputConfig, Secret
    from harvester.progress import Progress
    from harvester.run import run_source
    from harvester.sources.nobb import NobbSource

    cfg = NobbConfig(
        base_url=url, username=Secret("harvester"), password=Secret("harvester"),
        rate_limit="0", page_size=page_size, concurrency=concurrency, partitions=partitions,
        two_ended=concurrency > 1,
    )  # fmt: skip
    result = await run_source(
        NobbSource(cfg), mode="dump", output=OutputConfig(compression=compression),  # type: ignore[arg-type]
        out_dir=out, config_digest="bench",
        progress=Progress(source="nobb"),
    )  # fmt: skip
    return result.manifest.records


def child(variant: str, url: str, page_size: int, concurrency: int, partitions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        if variant == "naive":
            n = asyncio.run(naive(url, Path(tmp) / "out.ndjson", page_size))
        else:
            compression = variant.split("-", 1)[1]
            n = asyncio.run(
                harvester(url, Path(tmp), page_size, concurrency, partitions, compression)
            )
        dt = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n} {dt} {rss}")


def run_child(variant: str, url: str, page_size: int, conc: int = 1, parts: int = 1) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_nobb", "--child", variant, url, str(page_size),
         str(conc), str(parts)],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return [float(x) for x in out]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    proc, url = start("--nobb-items", str(args.items))
    try:
        runs: dict[str, list[list[float]]] = {
            "naive": [],
            "harvester-none": [],
            "harvester-gzip": [],
        }
        if importlib.util.find_spec("zstandard") is not None:
            runs["harvester-zstd"] = []
        for _ in range(args.rounds):
            for name in runs:
                runs[name].append(run_child(name, url, 10_000, 4, 2))
        print(f"1. NOBB dump, {args.items:,} items, pageSize 10000, no limit, identity; "
              f"medians of {args.rounds} interleaved runs")  # fmt: skip
        rate = {}
        for name, rs in runs.items():
            assert all(int(r[0]) == args.items for r in rs), rs
            secs = statistics.median(r[1] for r in rs)
            rate[name] = args.items / secs
            rss = statistics.median(r[2] for r in rs)
            print(f"   {name:15s} {rate[name]:10,.0f} items/s  peak RSS {rss:6.0f} MB")
        for name in runs:
            if name == "naive":
                continue
            print(f"   ratio {name} / naive: {rate[name] / rate['naive']:.2f}x (target >= 1.5)")
    finally:
        proc.terminate()
        proc.wait()
    items = 10_000
    proc, url = start("--nobb-items", str(items), "--latency-ms", "200")
    try:
        seq = run_child("harvester-none", url, 100, 1, 1)
        par = run_child("harvester-none", url, 100, 8, 4)
        assert int(seq[0]) == int(par[0]) == items
        print(
            f"2. 200 ms latency, {items:,} items, pageSize 100: "
            f"one sequential walk {seq[1]:.1f} s, 4 partitions x 2 ends {par[1]:.1f} s: "
            f"{seq[1] / par[1]:.1f}x faster (target >= 6)"
        )
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
