"""``harvester compact`` beside DuckDB doing the same merge, on a NOBB dump and 7 nightly syncs.

The runs are written straight through the project's own commit protocol (``RunState``: the
sink, checkpoints, manifests), not harvested: a dump of N simulated items (``NobbCatalogue``,
~4.6 kB each) and 7 syncs of 1 % each, every sync's items changed (a new lastModifiedDate) and
some of them changed again later. Each merge runs in its own child process, timed by
``os.wait4`` (wall, user + system CPU) and reporting its own peak RSS (``own_peak``: the one
``wait4`` reports includes its parent's at the fork). The runs are written and the snapshot
digested in other children, so this process stays small (~40 MB) when run alone:

* harvester: ``python -m harvester compact nobb --config C``;
* DuckDB: ``read_json`` over every run's shards (with the file name, hence the run), ``QUALIFY
  row_number() OVER (PARTITION BY nobbNumber ORDER BY run DESC) = 1``, ``COPY ... TO`` gzip
  NDJSON: newest version per key by run order.

Checked: the snapshot's records are the expected ones byte for byte (an order-free digest: the
sum of every line's sha256, computed while the runs were written, against the snapshot's), and
DuckDB's output holds one row per key. DuckDB re-serializes the JSON it parsed, so its lines
are not the input bytes; that is the byte-identity target's point.

    python -m benchmarks.bench_compact [--items 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.own_peak import peak_mb, wrap
from harvester.config import OutputConfig
from harvester.output import current_run
from harvester.sim.catalogue import NobbCatalogue
from harvester.store.manifest import read_manifest
from harvester.store.merge import iter_lines
from harvester.store.run_state import RunOutcome, RunState
from harvester.store.storage import location

SYNCS = 7
SHARE = 0.01
_DUCKDB = """
import sys, duckdb
runs, out = sys.argv[1:-1], sys.argv[-1]
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
files = ", ".join(f"'{r}/part-*.ndjson.gz'" for r in runs)
con.execute(f'''
COPY (
  SELECT * EXCLUDE (filename) FROM read_json([{files}], format='newline_delimited',
                                             filename=true, maximum_object_size=1048576)
  QUALIFY row_number() OVER (PARTITION BY nobbNumber
                             ORDER BY regexp_extract(filename, '/(2[^/]*)/part-', 1) DESC) = 1
) TO '{out}' (FORMAT JSON, COMPRESSION GZIP)''')
rows, keys = con.execute(f"SELECT count(*), count(DISTINCT nobbNumber) FROM read_json('{out}', "
                         "format='newline_delimited', maximum_object_size=1048576)").fetchone()
print(rows, keys)
"""


def _digest(lines: Any) -> int:
    """An order-free digest of a set of lines: the sum of their sha256s, mod 2**256."""
    total = 0
    for line in lines:
        total += int.from_bytes(hashlib.sha256(line).digest(), "big")
    return total % (1 << 256)


async def _write_run(source_dir: Any, mode: str, at: datetime, lines: Any) -> str:
    run = RunState.open(source_dir, source="nobb", mode=mode, output=OutputConfig(),
                        key_of=lambda line: 0, now=at)  # fmt: skip
    async with run:
        sink = run.sink
        batch: list[bytes] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= 2000:
                await sink.write_lines(batch)
                batch = []
        await sink.write_lines(batch)
        outcome = RunOutcome(complete=True, config_digest="bench", partitions={}, checks={},
                             transport={}, rate_limit={})  # fmt: skip
        await run.finish(outcome, finished=at + timedelta(minutes=5))
    return run.run_dir.name


async def make_runs(out: Path, items: int) -> tuple[list[str], int]:
    """The dump and the syncs under ``out/nobb``; their run ids and the expected digest."""
    cat = NobbCatalogue(items, 7)
    source_dir = location(out) / "nobb"
    source_dir.make()
    start = datetime(2026, 11, 1, 2, tzinfo=UTC)
    runs = [await _write_run(source_dir, "dump", start, (cat.render(p) for p in range(items)))]
    newest: dict[int, int] = {}  # position -> sync number of its newest version
    step = max(1, int(1 / SHARE))
    changed: list[list[int]] = []
    for night in range(1, SYNCS + 1):
        picks = [p for p in range((night * 37) % step, items, step)]
        picks += [p for p in changed[-1][::5]] if changed else []  # some change again
        picks = sorted(set(picks))
        changed.append(picks)
        for p in picks:
            cat.touch(cat.keys[p], date(2026, 11, 1) + timedelta(days=night))
            newest[p] = night
        at = start + timedelta(days=night)
        runs.append(await _write_run(source_dir, "sync", at, (cat.render(p) for p in picks)))
    return runs, _digest(cat.render(p) for p in range(items))


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(wrap(cmd), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} exited {proc.returncode}: {err[-2000:]}")
    return {"secs": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mb": peak_mb(err) or usage.ru_maxrss / 1024, "stdout": out}  # fmt: skip


def compare(items: int, tmp: Path) -> dict[str, Any]:
    """Write the runs, merge them both ways; the figures of each side and the checks."""
    # The runs are written, and the snapshot digested, in child processes: a child's peak RSS
    # as wait4 reports it includes its parent's at the fork, so the parent stays small.
    t0 = time.perf_counter()
    made_by = [sys.executable, "-m", "benchmarks.bench_compact", "--make", str(tmp),
               "--items", str(items)]  # fmt: skip
    runs_and_digest = subprocess.run(made_by, capture_output=True, text=True, check=True)
    *runs, expected = runs_and_digest.stdout.split()
    made = time.perf_counter() - t0
    cfg = tmp / "c.toml"
    cfg.write_text(f'[output]\ndir = "{tmp}"\n[nobb]\nbase_url = "http://127.0.0.1:9"\n'
                   'username = "u"\npassword = "p"\n')  # fmt: skip
    ours = _timed([sys.executable, "-m", "harvester", "compact", "nobb", "--config", str(cfg)])
    snapshot = current_run(tmp / "nobb")
    assert snapshot is not None
    digest_by = [sys.executable, "-m", "benchmarks.bench_compact", "--digest", str(snapshot)]
    digest = subprocess.run(digest_by, capture_output=True, text=True, check=True)
    identical = digest.stdout.strip() == expected
    dirs = [str(tmp / "nobb" / r) for r in runs]
    duck = _timed([sys.executable, "-c", _DUCKDB, *dirs, str(tmp / "duckdb.ndjson.gz")])
    rows, keys = (int(x) for x in duck["stdout"].split()[-2:])
    return {"items": items, "write_secs": made, "harvester": ours, "duckdb": duck,
            "identical": identical, "duckdb_rows": rows, "duckdb_keys": keys}  # fmt: skip


def report(r: dict[str, Any]) -> str:
    """The printed comparison, with the target."""
    h, d = r["harvester"], r["duckdb"]
    fast = d["secs"] / h["secs"]
    mem = h["rss_mb"] / d["rss_mb"]
    met = fast > 1 and mem <= 0.25 and r["identical"]
    lines = [
        f"compact: {r['items']:,}-item NOBB dump + {SYNCS} syncs of {SHARE:.0%} "
        f"(runs written in {r['write_secs']:.1f}s)",
        f"  {'':10} {'wall s':>8} {'CPU s':>8} {'peak RSS MB':>12}",
        f"  {'harvester':10} {h['secs']:8.1f} {h['cpu']:8.1f} {h['rss_mb']:12.0f}",
        f"  {'DuckDB':10} {d['secs']:8.1f} {d['cpu']:8.1f} {d['rss_mb']:12.0f}",
        f"  harvester is {fast:.2f}x DuckDB's speed at {mem:.2f} of its peak memory; records "
        f"byte-identical to the input lines: {'yes' if r['identical'] else 'NO'}; DuckDB: "
        f"{r['duckdb_rows']:,} rows, {r['duckdb_keys']:,} keys",
        f"  target (faster than DuckDB at <= 1/4 its peak memory, byte-identical): "
        f"{'met' if met else 'NOT met'}",
    ]
    return "\n".join(lines)


def scenario(quick: bool, rounds: int) -> tuple[list[Any], dict[str, Any]]:
    """``python -m benchmarks --only compact``: one round (the runs take minutes to write);
    prints the comparison, and gives the suite's rows (wall s and CPU s, RSS beside)."""
    from benchmarks.suite import Row, size

    items = 50_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-compact-") as tmp:
        r = compare(items, Path(tmp))
    print(report(r), flush=True)
    h, d = r["harvester"], r["duckdb"]
    common: dict[str, Any] = {
        "scenario": "compact", "baseline_name": "DuckDB",
        "case": f"{size(items)} dump + {SYNCS} syncs of 1 %",
        "rss_harvester_mb": h["rss_mb"], "rss_baseline_mb": d["rss_mb"],
        "note": f"byte-identical: {'yes' if r['identical'] else 'NO'}; DuckDB "
                f"{r['duckdb_keys']:,} keys in {r['duckdb_rows']:,} rows",
    }  # fmt: skip
    rows = [Row(metric="s (wall)", harvester=h["secs"], baseline=d["secs"], **common),
            Row(metric="s (CPU)", harvester=h["cpu"], baseline=d["cpu"], **common)]  # fmt: skip
    return rows, {k: v for k, v in r.items() if k not in ("harvester", "duckdb")} | {
        "harvester": {k: v for k, v in h.items() if k != "stdout"},
        "duckdb": {k: v for k, v in d.items() if k != "stdout"},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--make", type=Path, help="(child) write the runs here; print ids, digest")
    p.add_argument("--digest", type=Path, help="(child) print a run's order-free digest")
    args = p.parse_args(argv)
    if args.make is not None:
        runs, expected = asyncio.run(make_runs(args.make, args.items))
        print(*runs, expected)
        return 0
    if args.digest is not None:
        run = location(args.digest)
        manifest = read_manifest(run)
        print(
            _digest(
                line
                for shard in manifest["shards"]  # type: ignore[attr-defined]
                for lines in iter_lines(run, str(shard["path"]))
                for line in lines
            )
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-compact-") as tmp:
        print(report(compare(args.items, Path(tmp))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
