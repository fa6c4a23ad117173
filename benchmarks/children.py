"""One harvest per fresh process, so each variant's peak RSS is its own.

``spawn(kind, **params)`` runs ``python -m benchmarks.children KIND PARAMS-JSON`` from the
repository root and returns the one JSON object the child prints: ``n`` (records written),
``secs`` (wall time of the harvest alone: not the interpreter's start-up, nor the imports the
kind needs), ``rss_mb`` (the child's peak RSS), ``rss_children_mb`` (the peak of any process it
started), plus what the kind knows (``requests``, ``throttled`` 429s, ``bytes`` received), and
``disk_peak_mb``: the most local disk its temporary directory (where a local dump writes, and
where a dump to ``s3://`` stages its shards) held, sampled every 10 ms. Kinds:

- ``nobb-harvester``: ``run_source`` with a ``NobbSource`` on uvloop, as ``harvester dump`` runs
  it; every knob (page size, concurrency, partitions, ends, compression, rate limit) a parameter,
  and ``out`` (an ``s3://`` URL; default: the temporary directory);
- ``nobb-naive``: ``benchmarks.bench_nobb.naive``, ``orjson.loads`` of each page then
  ``orjson.dumps`` per item, one sequential walk on the default asyncio loop;
- ``nobb-requests``, ``nobb-dlt``: the peers (``benchmarks.peers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.own_peak import own_peak_mb
from harvester.progress import Progress

__all__ = ["harvest_nobb", "spawn"]

ROOT = Path(__file__).resolve().parent.parent


async def harvest_nobb(
    url: str,
    out: Path | str,
    *,
    page_size: int = 10_000,
    concurrency: int = 4,
    partitions: int = 0,
    two_ended: bool = True,
    compression: str = "gzip",
    accept_encoding: str = "identity",
    rate_limit: str = "0",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """A full NOBB dump into ``out``; records written, requests, 429s, bytes and completeness.

    ``progress`` (a fresh one if None) is the run's live counters, readable while it runs.
    """
    from harvester.config import NobbConfig, OutputConfig, Secret
    from harvester.run import run_source
    from harvester.sources.nobb import NobbSource

    cfg = NobbConfig(
        base_url=url, username=Secret("harvester"), password=Secret("harvester"),
        rate_limit=rate_limit, page_size=page_size, concurrency=concurrency,
        partitions=partitions, two_ended=two_ended, accept_encoding=accept_encoding,
    )  # fmt: skip
    progress = progress or Progress(source="nobb")
    output = OutputConfig(compression=compression)  # type: ignore[arg-type]
    result = await run_source(NobbSource(cfg), mode="dump", output=output, out_dir=out,
                              config_digest="bench", progress=progress)  # fmt: skip
    return {
        "n": result.manifest.records,
        "complete": result.manifest.complete,
        "requests": progress.requests,
        "throttled": progress.throttled,
        "bytes": progress.bytes_in,
    }


def _run(kind: str, params: dict[str, Any], tmp: Path) -> dict[str, Any]:
    url = str(params.pop("url"))
    if kind == "nobb-harvester":
        from harvester.cli import loop_factory

        out = params.pop("out", None) or tmp
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(harvest_nobb(url, out, **params))
    if kind == "nobb-naive":
        from benchmarks.bench_nobb import naive

        return {"n": asyncio.run(naive(url, tmp / "out.ndjson", int(params["page_size"])))}
    if kind == "nobb-requests":
        from benchmarks.peers import requests_loop

        return {"n": requests_loop(url, tmp / "out.ndjson", int(params["page_size"]))}
    if kind == "nobb-dlt":
        from benchmarks.peers import dlt_dump

        return dlt_dump(url, tmp, int(params["page_size"]))
    raise SystemExit(f"unknown kind {kind!r}")


def _disk_bytes(root: str) -> int:
    total = 0
    for parent, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):  # deleted between the listing and the stat
                total += os.lstat(os.path.join(parent, name)).st_size
    return total


#: What each kind imports to run, imported before its clock starts: ``secs`` is the harvest's
#: time, not the imports' (~0.16 s for the harvester's run machinery, ~0.1 s for aiohttp).
_MODULES = {
    "nobb-harvester": (
        "harvester.cli",
        "harvester.config",
        "harvester.run",
        "harvester.sources.nobb",
    ),
    "nobb-naive": ("benchmarks.bench_nobb",),
    "nobb-requests": ("benchmarks.peers",),
    "nobb-dlt": ("benchmarks.peers",),
}


def child(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run one variant in this process and return its figures (see the module docstring)."""
    for name in _MODULES.get(kind, ()):
        importlib.import_module(name)
    with tempfile.TemporaryDirectory() as tmp:
        tempfile.tempdir = tmp  # staging of s3:// shards lands here too: one place to measure
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.01):
                peak[0] = max(peak[0], _disk_bytes(tmp))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t = time.perf_counter()
        try:
            out = _run(kind, params, Path(tmp))
        finally:
            secs = time.perf_counter() - t
            stop.set()
            sampler.join()
        peak[0] = max(peak[0], _disk_bytes(tmp))
    return {
        **out,
        "secs": secs,
        "disk_peak_mb": peak[0] / 1e6,
        "rss_mb": own_peak_mb(),
        "rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def spawn(kind: str, **params: Any) -> dict[str, Any]:
    """Run one variant in a fresh ``python -m benchmarks.children`` process; its figures."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.children", kind, orjson.dumps(params).decode()],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    result: dict[str, Any] = orjson.loads(proc.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    print(orjson.dumps(child(sys.argv[1], orjson.loads(sys.argv[2]))).decode())
