"""NOBB page handling, harvester's streaming splitter vs the naive loop, on the same bytes.

A: ``orjson.loads(page)``, then ``orjson.dumps`` per item, each line written to a file.
B: ``ItemSplitter`` fed 64 KB chunks, each item's served bytes written to a file.
Both run in fresh subprocesses (so each reports its own peak RSS), interleaved A B A B; medians.

    python -m benchmarks.bench_nobb_parse [ITEMS]
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 1 << 16


def _page(items: int) -> bytes:
    from harvester.sim.catalogue import NobbCatalogue

    cat = NobbCatalogue(items, 1)
    return b"[" + b",".join(cat.render(i) for i in range(items)) + b"]"


def _naive(page: bytes, out: Path) -> int:
    import orjson

    with open(out, "wb") as fh:
        items = orjson.loads(page)
        for item in items:
            fh.write(orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE))
    return len(items)


def _harvester(page: bytes, out: Path) -> int:
    from harvester.parse.nobb import ItemSplitter

    splitter = ItemSplitter()
    n = 0
    with open(out, "wb") as fh:
        for i in range(0, len(page), CHUNK):
            for item in splitter.feed(page[i : i + CHUNK]):
                fh.write(item.line + b"\n")
                n += 1
        for item in splitter.close():
            fh.write(item.line + b"\n")
            n += 1
    return n


def child(variant: str, page_path: str) -> None:
    page = Path(page_path).read_bytes()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn = _naive if variant == "naive" else _harvester
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        n = fn(page, Path(tmp) / "out.ndjson")
        dt = time.perf_counter() - t
    added = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(f"{n} {dt} {added}")


def main(items: int = 10_000, rounds: int = 3) -> None:
    page = _page(items)
    mb = len(page) / 1e6
    results: dict[str, list[tuple[float, float]]] = {"naive": [], "harvester": []}
    with tempfile.NamedTemporaryFile() as f:
        f.write(page)
        f.flush()
        for _ in range(rounds):
            for variant in ("naive", "harvester"):
                cmd = [sys.executable, "-m", "benchmarks.bench_nobb_parse", "--child", variant]
                out = subprocess.run(
                    [*cmd, f.name], check=True, capture_output=True, text=True
                ).stdout.split()
                assert int(out[0]) == items, out
                results[variant].append((float(out[1]), float(out[2])))
    print(f"page: {items:,} items, {mb:.1f} MB; medians of {rounds} interleaved runs")
    rate = {}
    for variant, runs in results.items():
        secs = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        rate[variant] = items / secs
        print(f"  {variant:9s} {mb / secs:7.1f} MB/s {items / secs:10,.0f} items/s  "
              f"peak RSS added {rss:6.1f} MB")  # fmt: skip
    print(f"  ratio harvester / naive: {rate['harvester'] / rate['naive']:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
