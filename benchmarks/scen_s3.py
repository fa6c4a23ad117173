"""The ``s3`` scenario: a NOBB dump to ``s3://`` beside the same dump to a local directory.

Both run in the same round against the same simulator (200,000 items, pageSize 10000, gzip-1
shards of 100,000 records), the bucket being a SeaweedFS ``weed mini`` on loopback (the same
two cores: its CPU is charged to the s3 side, as a real store's network time would be). Rows:

- ``items/s``: the s3 dump's rate beside the local one's (target ratio >= 0.8);
- ``disk MB``: the peak local disk each used (sampled; the s3 side stages one shard at a time);
- the library comparison behind the choice of obstore (``bench_s3.compare``): shard upload MB/s
  and small PUT+GET ops/s, obstore beside fsspec/s3fs.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

from benchmarks.bench_s3 import compare
from benchmarks.children import spawn
from benchmarks.seaweed import SeaweedFS, weed_binary
from benchmarks.suite import Row, interleave, median, simulator, size

__all__ = ["s3"]

LOCAL = "the same dump to a local directory, same round"
SKIPPED = "skipped: pip install -e '.[bench]' (s3fs)"


def s3(quick: bool, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """Dump to s3:// (SeaweedFS on loopback) vs to a local directory; obstore vs s3fs."""
    binary, why = weed_binary()
    if binary is None:
        raise RuntimeError(f"s3 scenario needs SeaweedFS: {why}")
    items = 20_000 if quick else 200_000
    rounds = 1 if quick else rounds
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp, SeaweedFS(Path(tmp) / "weed", binary) as server:
        os.environ.update(server.env)  # the children reach the bucket like `harvester dump`
        try:
            with simulator("--nobb-items", str(items)) as url:
                variants = {
                    "local": lambda: spawn("nobb-harvester", url=url),
                    "s3": lambda: spawn("nobb-harvester", url=url,
                                        out=server.url(f"bench/{uuid.uuid4().hex}")),
                }  # fmt: skip
                runs = interleave(variants, rounds)
            # The library comparison needs s3fs (the bench extra); the dump rows do not.
            libs = (
                compare(server, Path(tmp), files=4 if quick else 8, mb=16,
                        n=50 if quick else 200, rounds=rounds)
                if importlib.util.find_spec("s3fs") is not None
                else None
            )  # fmt: skip
        finally:
            os.environ.clear()
            os.environ.update(saved)
    for name, rs in runs.items():
        assert all(int(r["n"]) == items and r["complete"] for r in rs), (name, rs)
    local, remote = runs["local"], runs["s3"]
    case = f"{size(items)} items, gzip-1, s3:// on local SeaweedFS"
    common: dict[str, Any] = {"scenario": "s3", "case": case, "baseline_name": LOCAL,
                              "rss_harvester_mb": median(remote, "rss_mb"),
                              "rss_baseline_mb": median(local, "rss_mb")}  # fmt: skip
    rows = [
        Row(metric="items/s", harvester=items / median(remote, "secs"),
            baseline=items / median(local, "secs"), runs={"s3": remote, "local": local},
            note="target ratio >= 0.8", **common),
        Row(metric="disk MB", harvester=median(remote, "disk_peak_mb"),
            baseline=median(local, "disk_peak_mb"),
            note="peak local disk; the s3 side stages one shard at a time", **common),
        Row(scenario="s3", case="shard upload, 16 MB files", metric="MB/s",
            harvester=libs["obstore"]["MB/s"] if libs else None,
            baseline=libs["s3fs"]["MB/s"] if libs else None,
            baseline_name="fsspec/s3fs put_file",
            note="obstore.put from a file path" if libs else SKIPPED),
        Row(scenario="s3", case="4 KB PUT then GET (checkpoint, state, lock)", metric="ops/s",
            harvester=libs["obstore"]["ops/s"] if libs else None,
            baseline=libs["s3fs"]["ops/s"] if libs else None,
            baseline_name="fsspec/s3fs pipe_file + cat_file",
            note="obstore.put + obstore.get" if libs else SKIPPED),
    ]  # fmt: skip
    return rows, {"items": items, "libraries": libs}
