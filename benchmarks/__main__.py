"""``python -m benchmarks``: every benchmark against the embedded simulator, one table, one JSON.

Runs each scenario (``nobb``, ``latency``, ``dbk``, ``limiter``, ``scaling``, ``peers``, ``s3``,
``edges``, ``compact``, ``cpu``) with its baseline in the same run, interleaved, medians of
``--rounds`` rounds (``compact``: one round); prints one table (the notes under it name each
baseline) and writes everything to ``benchmarks/results/<UTC start time>.json``. Run it from the
repository root (``harvester bench`` does that for you in a source checkout). The simulator runs
on the same machine as the clients, so on a 2-core machine the figures include that contention.

    python -m benchmarks                        # everything, 2 rounds (about 20 minutes)
    python -m benchmarks --quick                # small sizes, one round
    python -m benchmarks --only nobb,peers      # some scenarios
    python -m benchmarks --sweep --rate-limit 600/60s --latency-ms 80   # tuning (≈3 minutes)

Exit status: 0 when every scenario ran, 1 when one failed (its row says so), 2 on bad flags.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.suite import RESULTS, Row, machine, render_table, write_results
from harvester.errors import ConfigError

Scenario = Callable[[bool, int], tuple[list[Row], dict[str, Any]]]
NAMES = ("nobb", "latency", "dbk", "limiter", "scaling", "peers", "s3", "edges", "compact", "cpu")


def _scenarios() -> dict[str, Scenario]:
    from benchmarks.bench_compact import scenario as compact
    from benchmarks.peers import peers
    from benchmarks.scen_cpu import cpu
    from benchmarks.scen_edges import edges
    from benchmarks.scen_nobb import latency, nobb, scaling
    from benchmarks.scen_other import dbk, limiter
    from benchmarks.scen_s3 import s3

    return {"nobb": nobb, "latency": latency, "dbk": dbk, "limiter": limiter,
            "scaling": scaling, "peers": peers, "s3": s3,
            "edges": edges, "compact": compact, "cpu": cpu}  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``python -m benchmarks`` (``harvester bench`` forwards the same ones)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, one round (a smoke run)")
    p.add_argument("--only", metavar="SCENARIO[,SCENARIO]",
                   help=f"run only these scenarios: {', '.join(NAMES)}")  # fmt: skip
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    p.add_argument("--sweep", action="store_true", help="tuning sweep instead of the suite")
    p.add_argument("--rate-limit", default="600/60s", help="sweep: the API's limit, N/S")
    p.add_argument("--latency-ms", type=float, default=0.0, help="sweep: the API's latency")
    p.add_argument("--rate-headers", choices=("x", "ietf", "ietf6", "both"), default="x",
                   help="sweep: the API's rate-limit header family")  # fmt: skip
    p.add_argument("--reset-style", choices=("epoch", "delta"), default="epoch",
                   help="sweep: x-ratelimit-reset as a UNIX time or seconds")  # fmt: skip
    p.add_argument("--clock-skew", type=float, default=0.0, help="sweep: the API's clock skew")
    p.add_argument("--rate-sliding", action="store_true", help="sweep: a sliding window")
    p.add_argument("--results-dir", type=Path, default=RESULTS, help="where the JSON goes")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite (or the sweep); returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.sweep:
        from benchmarks.sweep import run_sweep

        try:
            policy = ["--rate-headers", args.rate_headers, "--reset-style", args.reset_style,
                      "--clock-skew", str(args.clock_skew)]  # fmt: skip
            if args.rate_sliding:
                policy.append("--rate-sliding")
            return run_sweep(args.rate_limit, args.latency_ms, quick=args.quick,
                             directory=args.results_dir, policy=policy)  # fmt: skip
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    names = list(NAMES) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        print(f"error: unknown scenario {', '.join(unknown)} (known: {', '.join(NAMES)})",
              file=sys.stderr)  # fmt: skip
        return 2
    scenarios = _scenarios()
    started = datetime.now(UTC)
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}; "
          f"{'quick, 1 round' if args.quick else f'{args.rounds} interleaved rounds'}",
          flush=True)  # fmt: skip
    rows: list[Row] = []
    extra: dict[str, Any] = {}
    failed = False
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        t = datetime.now(UTC)
        try:
            got, extra[name] = scenarios[name](args.quick, args.rounds)
        except Exception as exc:
            traceback.print_exc()
            failed = True
            got = [Row(scenario=name, case="failed", metric="-", harvester=None, baseline=None,
                       baseline_name="-", note=f"failed: {exc!r}"[:200])]  # fmt: skip
            extra[name] = {"error": repr(exc)}
        extra[name]["seconds"] = (datetime.now(UTC) - t).total_seconds()
        rows.extend(got)
    print()
    print(render_table(rows))
    path = write_results(rows, vars(args), extra, started, args.results_dir)
    print(f"\nresults: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
