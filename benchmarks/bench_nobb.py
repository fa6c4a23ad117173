"""NOBB end to end against the simulator (a subprocess, its own core): harvester vs a naive loop.

1. No rate limit, no compression on the wire, pageSize 10000: harvester's dump (streaming
   splitter, sink compressing in a thread) vs the naive loop ``orjson.loads(await resp.read())``
   then ``orjson.dumps`` per item to an uncompressed file, one sequential walk. Output
   compression none, gzip (level 1: ISA-L, the default), gzip forced through zlib (the fallback,
   side by side with ISA-L) and zstd when installed. Items/s, ratio, peak RSS of each (each
   runs in a fresh process), interleaved A B C A B C, medians.
2. 200 ms latency, 10,000 items, pageSize 100 (small pages, so the chains' latency is what
   binds): 1, 2, 4 and 8 partitions walked from one end or from both, interleaved, against one
   sequential walk of the same catalogue in the same round: wall time (planning probes and the
   catch-up partition included), requests, speedup (median of the rounds' ratios).
3. HTTPS beside plain HTTP: the same dump (part 1's, output uncompressed) from two simulators,
   one serving TLS with a throwaway CA (trustme; the client trusts it through SSL_CERT_FILE),
   interleaved, on uvloop as ``harvester dump`` runs (``--tls-loop asyncio``: the default loop):
   items/s of each, their ratio (target >= 0.85) and the connections each dump opened
   (keep-alive: about one per walk, not one per page).

    python -m benchmarks.bench_nobb [--items 200000] [--rounds 2] [--latency-rounds 3]
                                    [--accept-encoding identity|"gzip, br"]
    python -m benchmarks.bench_nobb --only latency      # part 2 alone (about 3 minutes)
    python -m benchmarks.bench_nobb --only tls [--tls-rounds 3]   # part 3 alone
4. No rate headers and no limit, 200 ms latency, 30,000 items, pageSize 1000: harvester with
   its default config (``rate_limit = "auto"``, concurrency 4, two-ended partitions, gzip
   output) against the naive sequential aiohttp + orjson walk, interleaved: seconds of each, the
   harvester's requests and the share of them that were ``x-totalHits`` probes, the speedup
   (median of the rounds' ratios; target >= 3x). One untimed naive walk first: the simulator
   keeps its renders, so both sides are timed against the same warm simulator.

    python -m benchmarks.bench_nobb --only defaults [--default-rounds 3]   # part 4 alone
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from benchmarks.own_peak import own_peak_mb

AUTH = {
    "Authorization": "Basic " + base64.b64encode(b"harvester:harvester").decode(),
    "Accept-Encoding": "identity",
}
#: The simulated world's "now": injected, so a benchmark measures the same world on any day.
NOW = "2026-11-20T00:00:00Z"
#: Part 2's layouts: (partitions, ends); the first is the sequential baseline.
LAYOUTS = [(1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2), (8, 1), (8, 2)]


def start(*flags: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harvester", "simulate", "--port", "0", "--rate-limit", "0",
         "--now", NOW, *flags],
        stdout=subprocess.PIPE, text=True, env=env,
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
    url: str, out: Path, page_size: int, concurrency: int, partitions: int, ends: int,
    compression: str, accept_encoding: str = "identity",
) -> tuple[int, int, int]:  # fmt: skip
    """One dump; (records, requests, connections opened)."""
    from harvester.config import NobbConfig, OutputConfig, Secret
    from harvester.progress import Progress
    from harvester.run import run_source
    from harvester.sources.nobb import NobbSource

    cfg = NobbConfig(
        base_url=url, username=Secret("harvester"), password=Secret("harvester"),
        rate_limit="0", page_size=page_size, concurrency=concurrency, partitions=partitions,
        two_ended=ends == 2, accept_encoding=accept_encoding,
    )  # fmt: skip
    progress = Progress(source="nobb")
    result = await run_source(
        NobbSource(cfg), mode="dump", output=OutputConfig(compression=compression),  # type: ignore[arg-type]
        out_dir=out, config_digest="bench", progress=progress,
    )  # fmt: skip
    connections = int(str(result.manifest.transport.get("connections", 0)))
    return result.manifest.records, progress.requests, connections


async def defaults(url: str, out: Path, page_size: int) -> tuple[int, int, int]:
    """One dump with the default config but ``page_size``; (records, requests, probes)."""
    from benchmarks.bench_token_life import count_probes
    from harvester.config import NobbConfig, OutputConfig, Secret
    from harvester.progress import Progress
    from harvester.run import run_source
    from harvester.sources.nobb import NobbSource

    probes = count_probes()
    cfg = NobbConfig(base_url=url, username=Secret("harvester"), password=Secret("harvester"),
                     page_size=page_size)  # fmt: skip
    progress = Progress(source="nobb")
    result = await run_source(
        NobbSource(cfg), mode="dump", output=OutputConfig(), out_dir=out, config_digest="bench",
        progress=progress,
    )  # fmt: skip
    return result.manifest.records, progress.requests, probes[0]


def child(variant: str, url: str, page_size: int, partitions: int, ends: int, wire: str) -> None:
    """Run one variant in this (fresh) process; prints records, seconds, peak RSS MB, requests,
    connections (for ``harvester-default``: x-totalHits probes), CPU seconds."""
    requests = connections = 0
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        if variant == "naive":
            n = asyncio.run(naive(url, Path(tmp) / "out.ndjson", page_size))
        elif variant == "harvester-default":
            n, requests, connections = asyncio.run(defaults(url, Path(tmp), page_size))
        else:
            compression = variant.split("-")[1]
            if variant.endswith("-zlib"):
                from harvester.store import compress as sink

                sink.ISAL_LEVELS = ()  # the fallback, for the side-by-side figure
            dump = harvester(url, Path(tmp), page_size, partitions * ends, partitions, ends,
                             compression, wire)  # fmt: skip
            factory = None
            if variant.endswith("-uvloop"):  # the loop `harvester dump` runs on
                from harvester.cli import loop_factory

                factory = loop_factory()
            with asyncio.Runner(loop_factory=factory) as runner:
                n, requests, connections = runner.run(dump)
        dt = time.perf_counter() - t
    rss = own_peak_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{n} {dt} {rss} {requests} {connections} {usage.ru_utime + usage.ru_stime}")


def run_child(
    variant: str, url: str, page_size: int, parts: int = 1, ends: int = 1, wire: str = "identity",
    env: dict[str, str] | None = None,
) -> list[float]:  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_nobb", "--child", variant, url, str(page_size),
         str(parts), str(ends), wire],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.split()  # fmt: skip
    return [float(x) for x in out]


def throughput(items: int, rounds: int, wire: str) -> None:
    """Part 1: items/s and peak RSS of each variant, medians of interleaved rounds."""
    proc, url = start("--nobb-items", str(items))
    try:
        runs: dict[str, list[list[float]]] = {
            "naive": [],
            "harvester-none": [],
            "harvester-gzip": [],
            "harvester-gzip-zlib": [],
        }
        if importlib.util.find_spec("zstandard") is not None:
            runs["harvester-zstd"] = []
        for _ in range(rounds):
            for name in runs:
                runs[name].append(run_child(name, url, 10_000, 2, 2, wire))
    finally:
        proc.terminate()
        proc.wait()
    print(f"1. NOBB dump, {items:,} items, pageSize 10000, no limit, harvester offers {wire!r} "
          f"(naive: identity), 2 partitions x 2 ends; medians of {rounds} interleaved "
          "runs")  # fmt: skip
    rate = {}
    for name, rs in runs.items():
        assert all(int(r[0]) == items for r in rs), rs
        rate[name] = items / statistics.median(r[1] for r in rs)
        rss = statistics.median(r[2] for r in rs)
        print(f"   {name:20s} {rate[name]:10,.0f} items/s  peak RSS {rss:6.0f} MB")
    for name in runs:
        if name != "naive":
            print(f"   ratio {name} / naive: {rate[name] / rate['naive']:.2f}x (target >= 1.5)")
    isal = statistics.median(
        zl[1] / fast[1]
        for fast, zl in zip(runs["harvester-gzip"], runs["harvester-gzip-zlib"], strict=True)
    )
    print(f"   gzip-1 through ISA-L vs zlib, same run: {isal:.2f}x the items/s")


def latency(rounds: int, items: int = 10_000, page_size: int = 100) -> None:
    """Part 2: wall time of each layout beside one sequential walk, at 200 ms per request."""
    proc, url = start("--nobb-items", str(items), "--latency-ms", "200")
    runs: dict[tuple[int, int], list[list[float]]] = {layout: [] for layout in LAYOUTS}
    try:
        for _ in range(rounds):
            for parts, ends in LAYOUTS:
                r = run_child("harvester-none", url, page_size, parts, ends)
                assert int(r[0]) == items, r
                runs[(parts, ends)].append(r)
    finally:
        proc.terminate()
        proc.wait()
    base = runs[(1, 1)]
    print(f"2. 200 ms latency, {items:,} items, pageSize {page_size}, planning and catch-up "
          f"included; medians of {rounds} interleaved rounds")  # fmt: skip
    print("   partitions  ends  walks   seconds  requests  speedup vs 1 walk")
    speedup = {}
    for (parts, ends), rs in runs.items():
        secs = statistics.median(r[1] for r in rs)
        reqs = statistics.median(r[3] for r in rs)
        speedup[(parts, ends)] = statistics.median(
            b[1] / r[1] for b, r in zip(base, rs, strict=True)
        )
        print(f"   {parts:10d}  {ends:4d}  {parts * ends:5d}  {secs:8.2f}  {reqs:8.0f}  "
              f"{speedup[(parts, ends)]:6.2f}x")  # fmt: skip
    one = statistics.median(r[1] for r in base)
    four = statistics.median(r[1] for r in runs[(4, 2)])
    print(f"   one sequential walk {one:.2f} s, 4 partitions x 2 ends {four:.2f} s: "
          f"{speedup[(4, 2)]:.2f}x faster (target >= 6)")  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tls(items: int, rounds: int, loop: str = "uvloop") -> None:
    """Part 3: the same dump over HTTPS and over plain HTTP, interleaved; items/s, connections.

    The dumps run on uvloop, as ``harvester dump`` does (``loop="asyncio"``: the default loop,
    whose pure-Python TLS costs more)."""
    variant = "harvester-none-uvloop" if loop == "uvloop" else "harvester-none"
    import trustme

    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        ca_pem, chain, key = Path(tmp, "ca.pem"), Path(tmp, "chain.pem"), Path(tmp, "key.pem")
        ca.cert_pem.write_to_path(str(ca_pem))
        chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(str(key))
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        plain, plain_url = start("--nobb-items", str(items), env=env)
        secure, tls_url = start("--nobb-items", str(items), "--tls-cert", str(chain),
                                "--tls-key", str(key), env=env)  # fmt: skip
        trusted = {**env, "SSL_CERT_FILE": str(ca_pem)}
        runs: dict[str, list[list[float]]] = {"http": [], "https": []}
        try:
            for _ in range(rounds):
                sides = (("http", plain, plain_url, env), ("https", secure, tls_url, trusted))
                for name, proc, url, child_env in sides:
                    before = cpu_seconds(proc.pid)
                    run = run_child(variant, url, 10_000, 2, 2, env=child_env)
                    runs[name].append([*run, cpu_seconds(proc.pid) - before])
        finally:
            for proc in (plain, secure):
                proc.terminate()
                proc.wait()
    print(f"3. NOBB dump over HTTPS beside plain HTTP, {items:,} items, pageSize 10000, 2 "
          f"partitions x 2 ends, output uncompressed, {loop} loop; medians of {rounds} "
          "interleaved runs")  # fmt: skip
    rate = {}
    for name, rs in runs.items():
        assert all(int(r[0]) == items for r in rs), rs
        rate[name] = items / statistics.median(r[1] for r in rs)
        conns = statistics.median(r[4] for r in rs)
        reqs = statistics.median(r[3] for r in rs)
        cpu, sim_cpu = statistics.median(r[5] for r in rs), statistics.median(r[6] for r in rs)
        print(f"   {name:6s} {rate[name]:10,.0f} items/s  {conns:3.0f} connections per dump "
              f"({reqs:.0f} requests), CPU s per dump: harvester {cpu:.1f}, simulator "
              f"{sim_cpu:.1f}")  # fmt: skip
    pairs = list(zip(runs["http"], runs["https"], strict=True))
    ratio = statistics.median(h[1] / s[1] for h, s in pairs)
    seconds = ", ".join(f"{h[1]:.1f}/{s[1]:.1f}" for h, s in pairs)
    cpu_ratio = statistics.median(s[5] / h[5] for h, s in pairs)
    print(f"   seconds per round, http/https: {seconds}")
    print(f"   https / http items/s: {ratio:.2f} (median of the rounds' ratios; target >= 0.85)")
    print(f"   harvester CPU per dump, https / http: {cpu_ratio:.2f}x (what TLS costs the client, "
          "whatever the machine's load)")  # fmt: skip


def no_headers(rounds: int, items: int = 30_000, page_size: int = 1000) -> None:
    """Part 4: the default config beside the naive sequential walk, no rate headers, 200 ms."""
    proc, url = start("--nobb-items", str(items), "--latency-ms", "200")
    runs: dict[str, list[list[float]]] = {"naive": [], "harvester-default": []}
    try:
        # Untimed: the simulator keeps each item's render, so neither side is timed against
        # renders the other paid for.
        run_child("naive", url, page_size)
        for _ in range(rounds):
            for name in runs:
                r = run_child(name, url, page_size)
                assert int(r[0]) == items, r
                runs[name].append(r)
    finally:
        proc.terminate()
        proc.wait()
    naive_s = statistics.median(r[1] for r in runs["naive"])
    ours = runs["harvester-default"]
    ours_s = statistics.median(r[1] for r in ours)
    speedup = statistics.median(n[1] / h[1] for n, h in zip(runs["naive"], ours, strict=True))
    share = statistics.median(r[4] / r[3] for r in ours)
    print(f"4. no rate headers, no limit, 200 ms latency, {items:,} items, pageSize {page_size}; "
          f"harvester's default config beside a naive sequential walk; medians of {rounds} "
          "interleaved rounds")  # fmt: skip
    print(f"   naive sequential walk {naive_s:.2f} s; harvester {ours_s:.2f} s, "
          f"{statistics.median(r[3] for r in ours):.0f} requests of which x-totalHits probes "
          f"{share:.0%} (target <= 25 %)")  # fmt: skip
    print(
        f"   speedup {speedup:.2f}x (target >= 3x); per round: "
        + ", ".join(f"{n[1]:.1f}/{h[1]:.1f} s" for n, h in zip(runs["naive"], ours, strict=True))
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--latency-rounds", type=int, default=3)
    p.add_argument("--tls-rounds", type=int, default=3)
    p.add_argument("--tls-loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--default-rounds", type=int, default=3)
    p.add_argument("--only", choices=("throughput", "latency", "tls", "defaults"))
    p.add_argument("--accept-encoding", default="identity", help="part 1: harvester's offer")
    args = p.parse_args()
    if args.only in (None, "throughput"):
        throughput(args.items, args.rounds, args.accept_encoding)
    if args.only in (None, "latency"):
        latency(args.latency_rounds)
    if args.only in (None, "tls"):
        tls(args.items, args.tls_rounds, args.tls_loop)
    if args.only in (None, "defaults"):
        no_headers(args.default_rounds)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        variant, url, size, parts, ends, wire = sys.argv[2:8]
        child(variant, url, int(size), int(parts), int(ends), wire)
    else:
        main()
