"""Peers on the same simulator in the same run: dlt's REST API source and a plain requests loop.

Each side dumps the whole NOBB catalogue of one simulator (no rate limit, identity encoding for
all, pageSize 10000) in a fresh process; rounds are interleaved (harvester, requests, dlt, ...)
and the medians compared: wall time and peak RSS, and each side's item count against the
catalogue's.

- **harvester**: its defaults (4 walks, partitions sized from probes, both ends, gzip-1 shards).
- **requests**: ``session.get(...).json()`` per page, the ``x-forwardToken`` header as the next
  ``pageToken``, ``json.dumps`` per item to one NDJSON file: the loop most scripts are.
- **dlt**: ``dlt.sources.rest_api`` with ``HeaderCursorPaginator(cursor_key="x-forwardToken",
  cursor_param="pageToken")``, HTTP basic auth, ``max_table_nesting=0`` (one row per item, nested
  fields kept as JSON, like harvester's lines), into the ``filesystem`` destination as jsonl
  (gzip, dlt's default) in a temporary directory: extract, normalize and load all count.

Both peers come with ``pip install -e '.[bench]'``; without it their rows say so and are skipped.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from benchmarks.children import spawn
from benchmarks.suite import Row, interleave, median, simulator, size

__all__ = ["dlt_dump", "peers", "requests_loop"]

SKIPPED = "skipped: pip install -e '.[bench]'"


def requests_loop(url: str, out: Path, page_size: int) -> int:
    """The plain loop: one page at a time with requests, stdlib json; returns items written."""
    import requests

    auth = "Basic " + base64.b64encode(b"harvester:harvester").decode()
    headers = {"Authorization": auth, "Accept-Encoding": "identity"}
    n = 0
    token: str | None = None
    with requests.Session() as http, open(out, "w", encoding="utf-8") as fh:
        while True:
            params = {"pageSize": str(page_size), **({"pageToken": token} if token else {})}
            r = http.get(url + "/api/v2/items", params=params, headers=headers, timeout=120)
            r.raise_for_status()
            items = r.json()
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
            n += len(items)
            token = r.headers.get("x-forwardToken")
            if not token:
                return n


def dlt_dump(url: str, tmp: Path, page_size: int) -> dict[str, Any]:
    """A dlt pipeline run of the NOBB endpoint into jsonl files; items loaded into ``items``."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    import dlt
    from dlt.sources.helpers.rest_client.paginators import HeaderCursorPaginator
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source({
        "client": {
            "base_url": url,
            "auth": {"type": "http_basic", "username": "harvester", "password": "harvester"},
            "headers": {"Accept-Encoding": "identity"},
            "paginator": HeaderCursorPaginator(cursor_key="x-forwardToken",
                                               cursor_param="pageToken"),
        },
        "resources": [{
            "name": "items",
            "max_table_nesting": 0,
            "endpoint": {"path": "api/v2/items", "params": {"pageSize": page_size}},
        }],
    })  # fmt: skip
    pipeline = dlt.pipeline(
        pipeline_name="nobb_bench", pipelines_dir=str(tmp / "pipelines"), dataset_name="nobb",
        destination=dlt.destinations.filesystem(bucket_url=(tmp / "out").as_uri()),
    )  # fmt: skip
    pipeline.run(source, loader_file_format="jsonl")
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace is not None else None
    counts = info.row_counts if info is not None else {}
    files = [p for p in (tmp / "out").rglob("*") if p.is_file() and "items" in p.parts]
    return {"n": int(counts.get("items", 0)), "files": len(files)}


def _installed() -> list[str]:
    return [m for m in ("dlt", "requests") if importlib.util.find_spec(m) is None]


def peers(quick: bool, rounds: int) -> tuple[list[Row], dict[str, Any]]:
    """Rows: harvester vs each peer, wall time (with RSS) for one full dump; plus raw runs."""
    items = 5_000 if quick else 50_000
    case = f"full dump, {size(items)} items"
    names = {"requests": "plain requests loop, stdlib json",
             "dlt": "dlt rest_api, HeaderCursorPaginator, filesystem jsonl"}  # fmt: skip
    missing = _installed()
    if missing:
        return [
            Row(scenario="peers", case=f"{case} vs {p}", metric="s (wall)", harvester=None,
                baseline=None, baseline_name=names[p], note=SKIPPED)
            for p in ("requests", "dlt")
        ], {"missing": missing}  # fmt: skip
    with simulator("--nobb-items", str(items)) as url:
        variants = {
            "harvester": lambda: spawn("nobb-harvester", url=url),
            "requests": lambda: spawn("nobb-requests", url=url, page_size=10_000),
            "dlt": lambda: spawn("nobb-dlt", url=url, page_size=10_000),
        }
        runs = interleave(variants, 1 if quick else rounds)
    rows = []
    h = runs["harvester"]
    for peer in ("requests", "dlt"):
        p = runs[peer]
        counts = {int(r["n"]) for r in h} | {int(r["n"]) for r in p}
        same = counts == {items}
        rss_h, rss_p = median(h, "rss_mb"), median(p, "rss_mb")
        note = (f"items: harvester {int(h[0]['n']):,}, {peer} {int(p[0]['n']):,}"
                f" ({'same' if same else 'DIFFERENT'}); peak RSS {peer} / harvester "
                f"{rss_p / rss_h:.1f}x")  # fmt: skip
        kids = median(p, "rss_children_mb")
        if kids:
            note += f" ({peer} also ran child processes of up to {kids:.0f} MB)"
        rows.append(Row(
            scenario="peers", case=f"{case} vs {peer}", metric="s (wall)",
            harvester=median(h, "secs"), baseline=median(p, "secs"), baseline_name=names[peer],
            rss_harvester_mb=rss_h, rss_baseline_mb=rss_p, note=note,
            runs={"harvester": h, peer: p},
        ))  # fmt: skip
    return rows, {"items": items, "same_counts": all("same" in r.note for r in rows)}
