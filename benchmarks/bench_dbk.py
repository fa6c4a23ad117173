"""DBK end to end against the simulator (a subprocess): harvester vs the naive single-core loop.

The naive loop is the idiom from the research notes: fetch each window, ``iterparse`` the body,
element → dict, ``orjson.dumps`` per product to a file, one request at a time. It fetches the
same windows the harvester's first run learned (so both read the same bytes). harvester runs a
dump planned from that learned state, with ``workers`` = 0 and 1 (converts in the event loop's
process) and 2 (it and one worker process), gzip-1 shards, and 2 with uncompressed shards. Both
sides ask for identity encoding (on loopback, compression only costs CPU). Interleaved A B C D,
medians; each run in a fresh process; peak RSS of the main process and of its worker.

    python -m benchmarks.bench_dbk [--products 30000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from lxml import etree

from benchmarks.bench_nobb import start
from benchmarks.own_peak import own_peak_mb


def _naive_dict(el: Any) -> Any:
    out: dict[str, Any] = {"@" + k: v for k, v in el.attrib.items()}
    for child in el:
        out.setdefault(etree.QName(child).localname, []).append(_naive_dict(child))
    text = (el.text or "").strip()
    if text:
        if not out:
            return text
        out["#text"] = text
    return out


async def naive(url: str, out: Path, windows: list[list[int]]) -> tuple[int, int]:
    from harvester.plan.windows import stamp

    n = size = 0
    async with aiohttp.ClientSession() as http:
        async with http.post(
            url + "/dwapi/users/authenticate",
            json={"username": "harvester", "password": "harvester"},
        ) as r:
            token = (await r.json())["token"]  # fmt: skip
        headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}
        with open(out, "wb") as fh:
            for a, b, _ in windows:
                params = {"updatedFrom": stamp(a), "updatedTo": stamp(b)}
                async with http.get(
                    url + "/onix/document/export/v3.1", params=params, headers=headers
                ) as r:
                    if r.status == 204:
                        continue
                    body = await r.read()  # fmt: skip
                size += len(body)
                for _, el in etree.iterparse(io.BytesIO(body), events=("end",), tag="{*}Product"):
                    fh.write(orjson.dumps(_naive_dict(el), option=orjson.OPT_APPEND_NEWLINE))
                    el.clear()
                    n += 1
    return n, size


async def harvester(
    url: str, out: Path, workers: int, compression: str = "gzip"
) -> tuple[int, int]:
    from harvester.config import DbkConfig, OutputConfig, Secret
    from harvester.progress import Progress
    from harvester.run import run_source
    from harvester.sources.dbk import DbkSource

    cfg = DbkConfig(base_url=url, username=Secret("harvester"), password=Secret("harvester"),
                    rate_limit="0", workers=workers, concurrency=4,
                    accept_encoding="identity")  # fmt: skip
    progress = Progress(source="dbk")
    output = OutputConfig(compression=compression)  # type: ignore[arg-type]
    result = await run_source(DbkSource(cfg), mode="dump", output=output, out_dir=out,
                              config_digest="bench", progress=progress)  # fmt: skip
    return result.manifest.records, progress.bytes_in


def child(variant: str, url: str, state: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        learned = orjson.loads(Path(state).read_bytes())
        t = time.perf_counter()
        if variant == "naive":
            n, size = asyncio.run(naive(url, Path(tmp) / "out.ndjson", learned["windows"]))
        else:
            (Path(tmp) / "dbk").mkdir()
            shutil.copy(state, Path(tmp) / "dbk" / "state.json")
            workers, _, compression = variant.removeprefix("w").partition("-")
            n, size = asyncio.run(harvester(url, Path(tmp), int(workers), compression or "gzip"))
        dt = time.perf_counter() - t
    own = own_peak_mb()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # CPU of this process and of every worker it started (reaped by the pool's shutdown).
    cpu = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF,
              resource.RUSAGE_CHILDREN) for f in ("ru_utime", "ru_stime"))  # fmt: skip
    print(f"{n} {size} {dt} {own} {kids} {cpu}")


def run_child(variant: str, url: str, state: Path) -> list[float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_dbk", "--child", variant, url, str(state)],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    return [float(x) for x in out]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--products", type=int, default=30_000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    proc, url = start("--dbk-products", str(args.products), "--no-bulk-second")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            n, _ = asyncio.run(harvester(url, Path(tmp), 2))
            cold = time.perf_counter() - t
            state = Path(tmp) / "state.json"
            shutil.copy(Path(tmp) / "dbk" / "state.json", state)
            windows = len(orjson.loads(state.read_bytes())["windows"])
            print(f"DBK dump, {args.products:,} products, cap 2000, no limit, identity")
            print(f"   cold first run (no learned windows): {n:,} products in {cold:.1f} s; "
                  f"{windows} windows learned")  # fmt: skip
            variants = ["naive", "w0", "w1", "w2", "w2-none"]
            runs: dict[str, list[list[float]]] = {v: [] for v in variants}
            for _ in range(args.rounds):
                for v in variants:
                    runs[v].append(run_child(v, url, state))
    finally:
        proc.terminate()
        proc.wait()
    print(f"   medians of {args.rounds} interleaved runs, planned from the learned windows:")
    rate = {}
    for v, rs in runs.items():
        assert all(int(r[0]) == args.products for r in rs), (v, rs)
        secs = statistics.median(r[2] for r in rs)
        mb = statistics.median(r[1] for r in rs) / 1e6
        rate[v] = args.products / secs
        own, kids = (statistics.median(r[k] for r in rs) for k in (3, 4))
        name = "naive (1 core)" if v == "naive" else f"harvester workers={v[1:]}"
        name = name.replace("-none", ", no gzip")
        print(f"   {name:22s} {rate[v]:8,.0f} products/s {mb / secs:6.1f} MB/s  "
              f"peak RSS {own:5.0f} MB (workers {kids:4.0f} MB)")  # fmt: skip
    for v in variants[1:]:
        label = v[1:].replace("-none", ", no gzip")
        print(f"   ratio harvester workers={label} / naive: {rate[v] / rate['naive']:.2f}x"
              + ("  (target >= 1.6)" if v == "w2" else ""))  # fmt: skip
    print(f"   a 600/min quota at 2000 products per response asks for 20,000 products/s; "
          f"workers=2 reaches {rate['w2'] / 20_000:.0%} of that here "
          "(simulator on the same 2 cores)")  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
