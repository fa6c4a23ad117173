"""The ``harvester`` command line's grammar: every command and its flags, argv to a Namespace.

``build_parser`` builds one subparser per command (``simulate``'s flags come from ``sim.cli``);
``parse_args`` also collects sources written after options.
A usage error raises ``ConfigError`` (exit 2) with argparse's one-line message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harvester import __version__
from harvester.errors import ConfigError
from harvester.store.storage import out_dir

__all__ = ["SOURCES", "build_parser", "out_arg", "parse_args"]

SOURCES = ("nobb", "dbk")


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
    _add_demo(sub)
    _add_runs(sub)
    _add_compact(sub)
    _add_status(sub)
    simulate = sub.add_parser(
        "simulate", help="serve both APIs on loopback from a synthetic catalogue"
    )
    from harvester.sim.cli import add_arguments

    add_arguments(simulate)
    _add_probe(sub)
    _add_bench(sub)
    return parser


_Sub = argparse._SubParsersAction  # the type of ``add_subparsers()``'s answer


def _add_demo(sub: _Sub[_Parser]) -> None:
    """``harvester demo``: the embedded simulator's sizes and where the dump goes."""
    demo = sub.add_parser(
        "demo", help="start the embedded simulator of both APIs and dump NOBB and DBK from it"
    )
    demo.add_argument("--out", type=Path, default=Path("demo-out"), help="default ./demo-out")
    demo.add_argument("--nobb-items", type=int, default=20_000)
    demo.add_argument("--dbk-products", type=int, default=5_000)


def _add_runs(sub: _Sub[_Parser]) -> None:
    """``harvester dump`` and ``harvester sync``: sources, ``--resume`` and the run options."""
    for mode, what in (
        ("dump", "full catalogue dump of some or all sources"),
        ("sync", "pull what changed since the last complete run"),
    ):
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


def _add_compact(sub: _Sub[_Parser]) -> None:
    """``harvester compact [nobb] [dbk] [all] --config FILE [--out OUT] [--resume]
    [--keep-deleted]`` (run by ``compact.run_command``)."""
    p = sub.add_parser(
        "compact",
        help="merge the newest dump or snapshot and the syncs after it into one snapshot",
        description="Merge the newest complete dump or snapshot of each source and every "
        "complete sync after it into a new snapshot run; OUT/<source>/current.json names it.",
        usage="harvester compact [nobb] [dbk] [all] --config FILE [--out OUT] [--resume] "
        "[--keep-deleted] [options]",
    )
    _add_sources(p)
    p.add_argument("--config", type=Path, required=True, help="TOML config file")
    p.add_argument(
        "--out",
        type=out_arg,
        help="output directory or s3://bucket/prefix (overrides [output] dir)",
    )
    p.add_argument("--resume", action="store_true", help="continue the unfinished snapshot")
    p.add_argument(
        "--keep-deleted",
        action="store_true",
        help="keep DBK products whose newest version is a delete",
    )
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    verbosity = p.add_mutually_exclusive_group()
    verbosity.add_argument("-q", "--quiet", action="store_true", help="errors and summary only")
    verbosity.add_argument("-v", "--verbose", action="store_true", help="more detail")


def _add_status(sub: _Sub[_Parser]) -> None:
    """``harvester status --out OUT [--json] [--last N]``."""
    status = sub.add_parser("status", help="runs, high-water marks and resumable runs under OUT")
    status.add_argument(
        "--out",
        type=out_arg,
        required=True,
        help="output directory (or s3://bucket/prefix) to describe",
    )
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.add_argument("--last", type=int, default=5, help="runs listed per source (default 5)")


def _add_probe(sub: _Sub[_Parser]) -> None:
    """``harvester probe [SOURCE...] --config FILE [--json]``."""
    probe = sub.add_parser(
        "probe", help="measure each API's latency and rate-limit policy with 3 requests or fewer"
    )
    probe.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="nobb and/or dbk (default: every configured source)",
    )
    probe.add_argument("--config", type=Path, required=True, help="TOML config file")
    probe.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_bench(sub: _Sub[_Parser]) -> None:
    """``harvester bench``: the suite's scenarios and rounds, or a sweep's simulated API."""
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
    bench.add_argument(
        "--rate-headers",
        choices=("x", "ietf", "ietf6", "both"),
        help="sweep: the API's rate-limit header family (x)",
    )
    bench.add_argument(
        "--reset-style",
        choices=("epoch", "delta"),
        help="sweep: the reset as a UNIX time or seconds (epoch)",
    )
    bench.add_argument("--clock-skew", type=float, help="sweep: the API's clock skew, seconds")
    bench.add_argument("--rate-sliding", action="store_true", help="sweep: a sliding window")
