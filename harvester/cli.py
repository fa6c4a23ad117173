"""The ``harvester`` command: argv in, exit code out.

The exit codes are a contract (cron jobs depend on them), described in one table:
``docs/exit-codes.md``. Each comes from the ``exit_code`` of a class in ``harvester.errors``.

This module parses the command line, picks the event loop (uvloop where available), hands each
command to where it lives (dump, sync and demo: ``harvester.app``; status: ``status``; probe:
``probe``; simulate: ``sim.cli``; bench: the ``benchmarks`` package of a source checkout) and
maps ``HarvesterError`` to those codes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harvester import __version__
from harvester.errors import ConfigError, HarvesterError
from harvester.store.storage import out_dir

if TYPE_CHECKING:
    from harvester.engine.clock import Clock

__all__ = ["build_parser", "loop_factory", "main"]

log = logging.getLogger("harvester")

SOURCES = ("nobb", "dbk")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (1.7-1.9x faster on request-heavy phases), else None."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return None
    return uvloop.new_event_loop


def out_arg(text: str) -> Path | str:
    """``--out``: a directory, or an ``s3://bucket/prefix`` URL (checked: a bad one is exit 2)."""
    try:
        return out_dir(text)
    except ConfigError as exc:  # argparse shows an ArgumentTypeError's own message
        raise argparse.ArgumentTypeError(str(exc).removeprefix("output.dir: ")) from None


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with our own one-line message (the usage-error contract)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise ConfigError(f"{self.prog}: {message}")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="TOML config file")
    p.add_argument(
        "--out",
        type=out_arg,
        help="output directory or s3://bucket/prefix (overrides [output] dir)",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="auto: a live display on a terminal; always: a plain line every 10 s elsewhere too",
    )
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="json: one object a line, never mixed with the live display",
    )
    p.add_argument("--summary-json", type=Path, help="also write the run summary to this file")
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="errors and summary only")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="request-level detail")


_SOURCES_HELP = (
    "SOURCE: nobb, dbk, both (in any order), or all; none means every source configured "
    "(every [nobb] or [dbk] section in the config). They run at once, each under its own lock "
    "and rate limit."
)


def _source(text: str) -> str:
    if text not in (*SOURCES, "all"):
        choices = ", ".join(repr(c) for c in (*SOURCES, "all"))
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {choices})")
    return text


def _add_sources(p: argparse.ArgumentParser) -> None:
    """``[nobb] [dbk] [all]``: zero or more sources (``app.picked_sources`` resolves them).

    Checked by ``type``, not ``choices``: argparse checks an empty ``nargs="*"`` list against
    ``choices`` and refuses it. Sources after options are collected by ``parse_args``.
    """
    p.add_argument(
        "source",
        nargs="*",
        type=_source,
        metavar="SOURCE",
        help="nobb, dbk or all, several at once; none: every source in the config",
    )


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, except that dump's and sync's sources may also follow options
    (``dump nobb --resume dbk``): argparse fills a ``nargs="*"`` positional once."""
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "command", None) in ("dump", "sync", "compact"):
        args.source = [*args.source, *(_checked_source(parser, x) for x in extra)]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _checked_source(parser: argparse.ArgumentParser, text: str) -> str:
    try:
        return _source(text)
    except argparse.ArgumentTypeError as exc:
        parser.error(f"unrecognized arguments: {text}" if text.startswith("-") else str(exc))
        raise  # unreachable: error() raises


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (``harvester --help`` lists demo, dump, sync, compact, status,
    simulate, probe, bench)."""
    parser = _Parser(
        prog="harvester",
        description="Bulk harvests of the NOBB Export API and the DBK ONIX 3.1 export into sharded "
        "NDJSON with manifests. Exit codes: docs/exit-codes.md.",
    )
    parser.add_argument("--version", action="version", version=f"harvester {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo", help="start the embedded simulator of both APIs and dump NOBB and DBK from it"
    )
    demo.add_argument("--out", type=Path, default=Path("demo-out"), help="default ./demo-out")
    demo.add_argument("--nobb-items", type=int, default=20_000)
    demo.add_argument("--dbk-products", type=int, default=5_000)

    for mode, what in (("dump", "full catalogue dump of some or all sources"),
                       ("sync", "pull what changed since the last complete run")):  # fmt: skip
        run = sub.add_parser(
            mode,
            help=what,
            description=_SOURCES_HELP,
            usage=f"harvester {mode} [nobb] [dbk] [all] --config FILE [--resume] [options]",
        )
        _add_sources(run)
        run.add_argument(
            "--resume", action="store_true", help=f"continue the newest unfinished {mode}"
        )
        _add_run_options(run)

    from harvester.compact import add_parser as add_compact

    add_compact(sub, _add_sources, out_arg)

    status = sub.add_parser("status", help="runs, high-water marks and resumable runs under OUT")
    status.add_argument(
        "--out",
        type=out_arg,
        required=True,
        help="output directory (or s3://bucket/prefix) to describe",
    )
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.add_argument("--last", type=int, default=5, help="runs listed per source (default 5)")

    simulate = sub.add_parser(
        "simulate", help="serve both APIs on loopback from a synthetic catalogue"
    )
    from harvester.sim.cli import add_arguments

    add_arguments(simulate)

    probe = sub.add_parser(
        "probe", help="measure each API's latency and rate-limit policy with 3 requests or fewer"
    )
    probe.add_argument("sources", nargs="*", metavar="SOURCE",
                       help="nobb and/or dbk (default: every configured source)")  # fmt: skip
    probe.add_argument("--config", type=Path, required=True, help="TOML config file")
    probe.add_argument("--json", action="store_true", help="print the report as JSON")

    bench = sub.add_parser(
        "bench", help="benchmarks beside their baselines, or a tuning sweep (source checkout)"
    )
    bench.add_argument("--quick", action="store_true", help="small sizes, one round")
    bench.add_argument(
        "--only",
        metavar="SCENARIO[,SCENARIO]",
        help="some of: nobb, latency, dbk, limiter, scaling, peers, s3, edges, compact, cpu",
    )
    bench.add_argument("--rounds", type=int, help="interleaved rounds (default 2)")
    bench.add_argument("--sweep", action="store_true", help="tuning sweep instead of the suite")
    bench.add_argument("--rate-limit", metavar="N/S", help="sweep: the API's limit (600/60s)")
    bench.add_argument("--latency-ms", type=float, help="sweep: the API's latency (0)")
    bench.add_argument("--rate-headers", choices=("x", "ietf", "ietf6", "both"),
                       help="sweep: the API's rate-limit header family (x)")  # fmt: skip
    bench.add_argument("--reset-style", choices=("epoch", "delta"),
                       help="sweep: the reset as a UNIX time or seconds (epoch)")  # fmt: skip
    bench.add_argument("--clock-skew", type=float, help="sweep: the API's clock skew, seconds")
    bench.add_argument("--rate-sliding", action="store_true", help="sweep: a sliding window")
    return parser


def _bench(args: argparse.Namespace) -> int:
    """``harvester bench``: ``python -m benchmarks`` from the source checkout holding this package.

    ``benchmarks/`` ships with the repository, not the installed package, so outside a checkout
    (a wheel install) this says so and exits 2.
    """
    import subprocess

    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / "__main__.py").is_file():
        print(
            "error: harvester bench runs from a source checkout (benchmarks/ is not installed); "
            "clone the repository, pip install -e '.[bench]' and run it there",
            file=sys.stderr,
        )
        return 2
    argv = [flag for flag in ("--quick", "--sweep", "--rate-sliding")
            if getattr(args, flag[2:].replace("-", "_"))]  # fmt: skip
    for flag in ("--only", "--rounds", "--rate-limit", "--latency-ms", "--rate-headers",
                 "--reset-style", "--clock-skew"):  # fmt: skip
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            argv += [flag, str(value)]
    return subprocess.run([sys.executable, "-m", "benchmarks", *argv], cwd=root).returncode


def _probe(args: argparse.Namespace) -> int:
    """``harvester probe``: at most 3 requests per source, then the report (``probe.py``)."""
    from harvester.config_file import load_config
    from harvester.probe import probe, render

    unknown = [s for s in args.sources if s not in SOURCES]
    if unknown:
        raise ConfigError(f"harvester probe: unknown source {unknown[0]!r} (nobb or dbk)")
    cfg = load_config(args.config)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        found = runner.run(probe(cfg, list(dict.fromkeys(args.sources))))
    print(render(found, as_json=args.json))
    return 0


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run the command line; returns the process exit code. ``clock`` times each run (its start,
    hence its run id; the real clock by default)."""
    try:
        args = parse_args(build_parser(), argv)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.command == "simulate":
        from harvester.sim.cli import run as run_simulator

        return run_simulator(args, loop_factory=loop_factory())
    if args.command == "status":
        from harvester.status import run as run_status

        return run_status(args)
    if args.command == "bench":
        return _bench(args)
    try:
        if args.command == "compact":  # no HTTP stack needed: it reads and writes output only
            from harvester.compact import run_command as run_compact

            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                return runner.run(run_compact(args))
        from harvester.app import run_command

        if args.command == "probe":
            return _probe(args)
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(run_command(args, clock=clock))
    except HarvesterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
