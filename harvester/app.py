"""Commands behind the CLI: dump, sync, demo.

Each command validates the config before any network I/O, runs its sources side by side (one
API's 429 never stalls another), prints a one-line summary per source on stderr and returns the
most serious exit code of the sources (the order is in ``docs/exit-codes.md``).

Both sources (NOBB, DBK) support dump, sync and ``--resume``; named together (``nobb dbk``),
as ``all``, or not named at all (every source the config has a section for), they run at once,
each under its own lock and rate limit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from harvester.config import Config, DbkConfig, NobbConfig, OutputConfig, Secret
from harvester.config_file import load_config
from harvester.engine.clock import Clock
from harvester.errors import ConfigError, HarvesterError, Interrupted
from harvester.logs import setup_logging
from harvester.plural import counted
from harvester.progress import Progress, ProgressMode, Reporter
from harvester.run import RunResult, run_source
from harvester.run_summary import exit_code, write_prometheus, write_summary
from harvester.sources.base import Mode, Source
from harvester.sources.nobb import NobbSource

__all__ = ["harvest_all", "picked_sources", "run_command", "run_demo"]

log = logging.getLogger("harvester")
SOURCES = ("nobb", "dbk")


def picked_sources(named: Sequence[str]) -> tuple[str, ...] | None:
    """The sources a command line names, each once, in the fixed order; None for every source
    the config has a section for (no source named, or ``all``).

    >>> picked_sources(["dbk", "nobb", "dbk"]), picked_sources([]), picked_sources(["all"])
    (('nobb', 'dbk'), None, None)
    """
    if not named or "all" in named:
        return None
    return tuple(name for name in SOURCES if name in named)


async def harvest_all(
    sources: Sequence[Source],
    output: OutputConfig,
    *,
    mode: Mode,
    out_dir: Path | str,
    digest: str,
    progress: ProgressMode = "auto",
    log_format: str = "text",
    resume: bool = False,
    clock: Clock | None = None,
) -> list[RunResult | HarvesterError]:
    """Run ``sources`` side by side, one task each under one TaskGroup; a result per source.

    Each source has its own lock, limiter and progress counters, so one API's 429s or failure
    never stall the other. SIGINT/SIGTERM cancel every source: each drains (whole shards, an
    incomplete manifest) and comes back as ``Interrupted`` (exit 130). A failure that stops a
    source comes back as its error, the others go on. ``progress`` and ``log_format`` pick how
    progress shows (``display.choose``); a source's row turns into its summary when it ends.
    """
    progs = [Progress(source=src.name) for src in sources]
    run: dict[str, Any] = {
        "mode": mode,
        "output": output,
        "out_dir": out_dir,
        "config_digest": digest,
        "resume": resume,
        "clock": clock,
    }

    async def one(src: Source, prog: Progress) -> RunResult | HarvesterError:
        result = await _run_guarded(src, progress=prog, **run)
        prog.finish(_summary(result), ok=isinstance(result, RunResult) and not result.exit_code)
        return result

    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    async with _display(progs, progress, log_format):
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(one(src, p)) for src, p in zip(sources, progs, strict=True)]

                def stop() -> None:
                    for task, prog in zip(tasks, progs, strict=True):
                        prog.stopping = True
                        task.cancel()

                for sig in (signal.SIGINT, signal.SIGTERM):
                    try:
                        loop.add_signal_handler(sig, stop)
                        installed.append(sig)
                    except (NotImplementedError, RuntimeError, ValueError):  # not main thread
                        pass
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
    return [
        Interrupted(f"{src.name}: interrupted before it started") if t.cancelled() else t.result()
        for src, t in zip(sources, tasks, strict=True)
    ]


def _display(
    progs: list[Progress], mode: ProgressMode, log_format: str
) -> AbstractAsyncContextManager[object]:
    """``display.choose``: with ``never`` the plain reporter (silent), without importing rich."""
    if mode == "never":
        return Reporter(progs, mode=mode, stream=sys.stderr, log_format=log_format)
    from harvester.display import choose

    return choose(progs, mode=mode, log_format=log_format)


async def _run_guarded(src: Source, **run: Any) -> RunResult | HarvesterError:
    """``run_source(src, **run)``; a failure comes back as its error, never raised."""
    try:
        return await run_source(src, **run)
    except HarvesterError as exc:
        return exc
    except Exception as exc:  # a bug: report it, and let the other source finish
        log.exception("%s: unexpected error", src.name)
        return HarvesterError(f"{src.name}: unexpected {type(exc).__name__}: {exc}")


def _summary(result: RunResult | HarvesterError) -> str:
    return result.summary_line() if isinstance(result, RunResult) else f"error: {result}"


def _report(result: RunResult | HarvesterError) -> None:
    print(_summary(result), file=sys.stderr)


async def run_demo(*, out_dir: Path, nobb_items: int, dbk_products: int) -> int:
    """Start the simulator in-process and dump NOBB and DBK from it, at once, into ``out_dir``."""
    from harvester.sim.server import Simulator
    from harvester.sim.settings import SimSettings
    from harvester.sources.dbk import DbkSource

    # No DBK bulk second here: the demo shows complete runs (tests show the unsplittable one).
    settings = SimSettings(
        nobb_items=nobb_items, dbk_products=dbk_products, rate_limit=0, dbk_bulk_second=False
    )
    async with Simulator(settings) as sim:
        print(
            f"simulator listening on {sim.url} (NOBB: {counted(nobb_items, 'item')}, "
            f"DBK: {counted(dbk_products, 'product')})"
        )
        user, password = Secret(settings.username), Secret(settings.password)
        cfg = Config(
            output=OutputConfig(dir=out_dir),
            nobb=NobbConfig(
                base_url=sim.url, username=user, password=password, rate_limit="0", page_size=2000
            ),
            dbk=DbkConfig(
                base_url=sim.url,
                username=user,
                password=password,
                rate_limit="0",
                max_products_per_response=settings.dbk_max_products,
            ),
        )
        assert cfg.nobb is not None and cfg.dbk is not None
        common: dict[str, Any] = {
            "mode": "dump",
            "out_dir": out_dir,
            "digest": cfg.digest(),
            "progress": "never",
        }
        found = await harvest_all([NobbSource(cfg.nobb), DbkSource(cfg.dbk)], cfg.output, **common)
        results: list[RunResult | HarvesterError | int] = list(found)
        for name, result, expected, what in zip(
            ("nobb", "dbk"), found, (nobb_items, dbk_products), ("item", "product"), strict=True
        ):
            _report(result)
            if isinstance(result, RunResult):
                m = result.manifest
                ok = "all" if m.records == expected else "NOT all"
                print(
                    f"{name}: {m.records:,} of {counted(expected, what)} written exactly once "
                    f"({ok}), {counted(len(m.shards), 'shard')} in {result.run}"
                )
    return exit_code(results)


def _dbk_source(cfg: DbkConfig) -> Source:
    # Imported only when [dbk] is configured: lxml and the ONIX tables cost a NOBB run ~40 ms.
    from harvester.sources.dbk import DbkSource

    return DbkSource(cfg)


async def run_command(args: argparse.Namespace, *, clock: Clock | None = None) -> int:
    """Dispatch one parsed command line; returns the exit code. ``clock`` times each run."""
    if args.command == "demo":
        return await run_demo(
            out_dir=args.out, nobb_items=args.nobb_items, dbk_products=args.dbk_products
        )
    setup_logging(fmt=args.log_format, quiet=args.quiet, verbose=args.verbose)
    cfg = load_config(args.config)
    out_dir: Path | str = args.out if args.out is not None else cfg.output.dir
    configured: dict[str, Source | None] = {
        "nobb": NobbSource(cfg.nobb) if cfg.nobb is not None else None,
        "dbk": _dbk_source(cfg.dbk) if cfg.dbk is not None else None,
    }
    named = picked_sources(args.source)
    missing = [name for name in named or () if configured[name] is None]
    if missing:
        sections = " or ".join(f"[{name}]" for name in missing)
        raise ConfigError(f"no {sections} section in the config {args.config}")
    picked = [
        src
        for name, src in configured.items()
        if src is not None and (named is None or name in named)
    ]
    if not picked:
        raise ConfigError(f"no [nobb] or [dbk] section in the config {args.config}")
    found = await harvest_all(
        picked,
        cfg.output,
        mode=args.command,
        out_dir=out_dir,
        digest=cfg.digest(),
        progress=args.progress,
        log_format=args.log_format,
        resume=args.resume,
        clock=clock,
    )
    for result in found:
        _report(result)
    results: list[RunResult | HarvesterError | int] = list(found)
    if args.command == "sync" and cfg.output.compact_after_sync:
        results += await _compact_after(found, cfg.output, out_dir, cfg.digest())
    if args.summary_json is not None:
        write_summary(args.summary_json, args.command, results)
    if cfg.output.prometheus_file is not None:
        write_prometheus(cfg.output.prometheus_file, results)
    return exit_code(results)


async def _compact_after(
    found: Sequence[RunResult | HarvesterError],
    output: OutputConfig,
    out_dir: Path | str,
    digest: str,
) -> list[int]:
    """``[output] compact_after_sync``: a snapshot after each complete sync; their exit codes
    (a failed compaction is 1, resumable, and leaves the sync complete)."""
    from harvester.compact import compact_all

    done = [r.source for r in found if isinstance(r, RunResult) and r.manifest.complete]
    codes = []
    for result in await compact_all(done, output, out_dir, config_digest=digest):
        print(result.summary_line(), file=sys.stderr)
        codes.append(result.exit_code)
    return codes
