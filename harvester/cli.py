"""The ``harvester`` command: argv in, exit code out.

The exit codes are a contract (cron jobs depend on them), described in one table:
``docs/exit-codes.md``. Each comes from the ``exit_code`` of a class in ``harvester.errors``.

This module parses the command line (its grammar: ``cli_parser``), picks the event loop (uvloop
where available), hands each command to where it lives (dump, sync and demo: ``harvester.app``;
status: ``status``; probe: ``probe``; simulate: ``sim.cli``; bench: the ``benchmarks`` package
of a source checkout) and maps ``HarvesterError`` to those codes.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harvester.cli_parser import SOURCES, build_parser, out_arg, parse_args
from harvester.errors import ConfigError, HarvesterError

if TYPE_CHECKING:
    import asyncio

    from harvester.engine.clock import Clock

__all__ = ["build_parser", "loop_factory", "main", "out_arg", "parse_args"]

log = logging.getLogger("harvester")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop where it is installed (1.7-1.9x faster on request-heavy phases), else None."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        return None
    return uvloop.new_event_loop


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
    argv = [
        flag
        for flag in ("--quick", "--sweep", "--rate-sliding")
        if getattr(args, flag[2:].replace("-", "_"))
    ]
    for flag in (
        "--only",
        "--rounds",
        "--rate-limit",
        "--latency-ms",
        "--rate-headers",
        "--reset-style",
        "--clock-skew",
    ):
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            argv += [flag, str(value)]
    return subprocess.run([sys.executable, "-m", "benchmarks", *argv], cwd=root).returncode


def _probe(args: argparse.Namespace) -> int:
    """``harvester probe``: at most 3 requests per source, then the report (``probe.py``)."""
    import asyncio

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


def _import_app() -> Callable[..., Coroutine[Any, Any, int]]:
    """``app.run_command``, imported with the cyclic garbage collector off, then frozen.

    An import allocates many objects and no cyclic garbage to speak of: collecting during it
    costs CPU for nothing, and ``gc.freeze`` keeps the modules' objects out of every later full
    collection (measured: a 10-item dump ~0.05-0.1 s less CPU, on a loaded machine).
    """
    if "harvester.app" in sys.modules:  # imported already (a second call in one process)
        from harvester.app import run_command

        return run_command
    enabled = gc.isenabled()
    gc.disable()
    try:
        from harvester.app import run_command
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
    return run_command


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
    # Imported here, not at the top: a DBK worker process imports the ``harvester`` script's
    # module (multiprocessing's spawn re-imports the main script), and needs no asyncio.
    import asyncio

    try:
        if args.command == "compact":  # no HTTP stack needed: it reads and writes output only
            from harvester.compact import run_command as run_compact

            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                return runner.run(run_compact(args))
        run_command = _import_app()
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
