"""DBK and rate-limit scenarios, built from ``bench_dbk`` and ``bench_limiter``'s functions.

- ``dbk``: ONIX → JSON. A first harvester dump learns the windows; then, interleaved, the naive
  single-core loop (``bench_dbk.naive``: fetch each learned window, ``iterparse`` + element →
  dict + ``orjson.dumps``) and harvester planned from those windows with 1 and 2 converting
  workers (``bench_dbk.run_child``: fresh processes). Products/s and MB/s of ONIX read; peak RSS
  of harvester counts its main process plus each worker process's peak (``workers - 1`` of
  them: the main process converts too).
- ``limiter``: the simulator enforces 20 requests per 2 s (fixed window, 50 ms latency), 4
  workers for 7 windows (``bench_limiter.scenario``): harvester's ``RateLimiter`` against a
  plain ``AsyncLimiter(20, 2)``: utilization of the full windows and 429s, with a steady limit
  and with the limit dropping to 10 per 2 s after window 3. These run in one process with the
  simulator, so no RSS is reported. Without aiolimiter (the ``bench`` and ``dev`` extras) the
  scenario is one row saying it was skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from benchmarks import bench_dbk, bench_limiter
from benchmarks.suite import Row, interleave, median, simulator, size

__all__ = ["dbk", "limiter"]

DBK_NAIVE = "naive single-core loop: iterparse + element→dict + orjson.dumps, window by window"
PLAIN = "plain aiolimiter.AsyncLimiter(20, 2)"


def _dbk_run(variant: str, url: str, state: Path) -> dict[str, Any]:
    n, size, secs, own, kids = bench_dbk.run_child(variant, url, state)[:5]
    return {"n": n, "bytes": size, "secs": secs, "rss_mb": own, "rss_workers_mb": kids}


@contextlib.contextmanager
def learned_dbk(products: int) -> Iterator[tuple[str, Path, Path]]:
    """A DBK simulator of ``products`` and one harvester dump of it: (url, a scratch directory,
    the ``state.json`` whose learned windows every measured variant then plans on)."""
    with simulator("--dbk-products", str(products), "--no-bulk-second") as url, \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        n, _ = asyncio.run(bench_dbk.harvester(url, Path(tmp), 2))
        assert n == products, (n, products)
        state = Path(tmp) / "state.json"
        shutil.copy(Path(tmp) / "dbk" / "state.json", state)
        yield url, Path(tmp), state


def dbk(quick: bool, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """ONIX → JSON, harvester workers 1 and 2 vs the naive loop, on the learned windows."""
    products = 3_000 if quick else 30_000
    with learned_dbk(products) as (url, _tmp, state):
        windows = len(orjson.loads(state.read_bytes())["windows"])
        runs = interleave({
            "naive": lambda: _dbk_run("naive", url, state),
            "w1": lambda: _dbk_run("w1", url, state),
            "w2": lambda: _dbk_run("w2", url, state),
        }, 1 if quick else rounds)  # fmt: skip
    for name, rs in runs.items():
        assert all(int(r["n"]) == products for r in rs), (name, rs)
    base = runs["naive"]
    rows = []
    for workers in (1, 2):
        h = runs[f"w{workers}"]
        own, kids = median(h, "rss_mb"), median(h, "rss_workers_mb")
        pooled = max(0, workers - 1)  # the main process is one of the workers (onix_pool)
        common: dict[str, Any] = {
            "scenario": "dbk", "baseline_name": DBK_NAIVE,
            "case": f"{size(products)} products, ONIX→JSON, workers={workers}",
            "rss_harvester_mb": own + pooled * kids, "rss_baseline_mb": median(base, "rss_mb"),
            "note": f"harvester RSS = main {own:.0f} MB + {pooled} × worker process {kids:.0f} MB; "
                    f"{windows} learned windows, gzip-1 shards",
        }  # fmt: skip
        rows.append(Row(metric="products/s", harvester=products / median(h, "secs"),
                        baseline=products / median(base, "secs"),
                        runs={"harvester": h, "naive": base}, **common))  # fmt: skip
        rows.append(Row(metric="MB/s", harvester=median(h, "bytes") / 1e6 / median(h, "secs"),
                        baseline=median(base, "bytes") / 1e6 / median(base, "secs"),
                        **common))  # fmt: skip
    return rows, {"products": products, "windows": windows}


def _limit_run(kind: str, drop: bool) -> dict[str, Any]:
    r = asyncio.run(bench_limiter.scenario(kind, drop))
    return {
        "utilization": float(r["utilization"]),  # type: ignore[arg-type]
        "throttled": int(r["429s"]),  # type: ignore[call-overload]
        "last_429_window": r["last_429_window"],
    }


def limiter(quick: bool, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """Utilization and 429s under a 20/2 s fixed window: RateLimiter vs a plain AsyncLimiter."""
    rows = []
    extra: dict[str, Any] = {}
    limit = f"{bench_limiter.LIMIT}/{bench_limiter.WINDOW:g}s"
    if importlib.util.find_spec("aiolimiter") is None:  # the baseline is in the bench extra
        skipped = Row(scenario="limiter", case=f"{limit} steady: 429 responses", metric="429s",
                      harvester=None, baseline=None, baseline_name=PLAIN,
                      note="skipped: pip install -e '.[bench]' (aiolimiter)")  # fmt: skip
        return [skipped], {"missing": ["aiolimiter"]}
    for drop in (False,) if quick else (False, True):
        label = f"{limit} → 10/2s after window 3" if drop else f"{limit} steady"
        runs = interleave({
            "harvester": lambda drop=drop: _limit_run("harvester", drop),  # type: ignore[misc]
            "plain": lambda drop=drop: _limit_run("plain", drop),  # type: ignore[misc]
        }, 1 if quick else rounds)  # fmt: skip
        h, p = runs["harvester"], runs["plain"]
        last = {k: ", ".join("none" if r["last_429_window"] is None else str(r["last_429_window"])
                             for r in v) for k, v in runs.items()}  # fmt: skip
        extra["drop" if drop else "steady"] = runs
        common: dict[str, Any] = {"scenario": "limiter", "baseline_name": PLAIN,
                  "note": f"{bench_limiter.WORKERS} workers, 50 ms latency, "
                          f"{bench_limiter.WINDOWS} windows; last window with a 429, "
                          f"per round: harvester {last['harvester']}; "
                          f"plain {last['plain']}"}  # fmt: skip
        rows.append(Row(case=f"{label}: utilization of full windows", metric="utilization",
                        harvester=median(h, "utilization"), baseline=median(p, "utilization"),
                        runs=runs, **common))  # fmt: skip
        rows.append(Row(case=f"{label}: 429 responses", metric="429s",
                        harvester=median(h, "throttled"), baseline=median(p, "throttled"),
                        **common))  # fmt: skip
    return rows, extra
