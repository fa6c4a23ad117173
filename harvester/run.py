"""One run of one source, from lock to manifest.

``run_source`` drives one run; the run directory's commit protocol itself (open or resume,
checkpoints, manifest, state.json) is ``store/run_state.py``'s ``RunState``:

0. let the source check its API's TLS certificate (``Source.check``): one that does not verify
   stops the source here, before anything is written (``CertificateError``, exit 2);
1. take the source directory's lock (a second run exits at once: ``LockedError``, exit 75);
2. ``RunState.open``: a new run directory ``OUT/<source>/<run_id>``, or with ``resume`` the
   newest unfinished run of the same mode, reopened from its checkpoint (``checkpoint.py``).
   Without ``resume`` an unfinished run is left as it is (a warning names it);
3. let the source harvest into the run's sink (``RunContext.run``);
4. ``RunState.finish``: commit the sink (every record in final shards), then write
   ``manifest.json`` last, complete or not; only for a complete run ``RunState.advance``
   replaces the source's high-water marks in ``OUT/<source>/state.json``.

``out_dir`` may be a bucket prefix (``s3://bucket/prefix``, see ``storage.py``): the same steps
run against objects, the lock being a lease (``lease.py``).

Cancellation (SIGINT/SIGTERM) lands in step 3: what is whole is committed, the manifest says
incomplete, and ``Interrupted`` (exit 130) is raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from harvester.config import OutputConfig
from harvester.engine.clock import Clock, SystemClock
from harvester.errors import HarvesterError, Interrupted, OutputError
from harvester.plural import counted
from harvester.progress import Progress
from harvester.sources.base import Mode, RunContext, Source
from harvester.store.lock import run_lock
from harvester.store.manifest import Manifest
from harvester.store.run_state import RunOutcome, RunState
from harvester.store.state_file import STATE, load_source_state, recover_source_state
from harvester.store.storage import Location, location

__all__ = ["STATE", "RunResult", "load_source_state", "run_source"]

log = logging.getLogger("harvester.run")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """How one source's run ended."""

    source: str
    mode: Mode
    run: Location
    manifest: Manifest
    exit_code: int
    duration: float
    failed: tuple[str, ...]

    @property
    def run_dir(self) -> Path:
        """The run directory on local disk (OutputError for a bucket run: use ``run``)."""
        if self.run.local is None:
            raise OutputError(f"{self.run} is in a bucket, not a local directory")
        return self.run.local

    def summary_line(self) -> str:
        m = self.manifest
        failed = counted(len(self.failed), "partition")
        state = "complete" if m.complete else f"INCOMPLETE ({failed} failed)"
        if m.checks.get("unaccounted"):  # never complete silently: say what is not accounted for
            lost = m.checks["unaccounted"]
            state += f" but {counted(lost, 'record')} unaccounted (see the manifest)"
        return (
            f"{self.source} {self.mode}: {state}, {counted(m.records, 'record')} in "
            f"{counted(len(m.shards), 'shard')}, {self.duration:.1f}s -> {self.run}"
        )


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside a (nested) exception group, in order."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


async def run_source(
    source: Source,
    *,
    mode: Mode,
    output: OutputConfig,
    out_dir: Location | Path | str,
    config_digest: str,
    progress: Progress,
    resume: bool = False,
    clock: Clock | None = None,
) -> RunResult:
    """Run ``source`` once into ``out_dir/<source>/<run_id>``; see the module docstring."""
    clock = clock or SystemClock()
    await source.check()  # a certificate that does not verify: stop before anything is written
    source_dir = location(out_dir, retry_seconds=output.store_retry_seconds) / source.name
    source_dir.make()
    t0 = clock.monotonic()
    with run_lock(source_dir, output.lock_lease_seconds):
        state, run = _open(source, source_dir, mode, output, resume, clock)
        async with run:
            ctx = RunContext(
                source=source.name,
                mode=mode,
                run=run,
                clock=clock,
                progress=progress,
                source_state=state,
                checkpoint_every=output.checkpoint_seconds,
            )
            progress.before = ctx.records_before  # the share done counts a resume's kept records
            interrupted = await _harvest(source, ctx)
            complete = not interrupted and not ctx.failed
            manifest = await run.finish(
                _outcome(ctx, complete, config_digest),
                finished=_now(clock),
            )
        _log_transport(source.name, ctx.transport)
        if complete:
            state.update(ctx.next_state)
            await run.advance(state, manifest)
    if interrupted:
        raise Interrupted(f"{source.name}: interrupted; what was whole is in {run.run_dir}")
    return RunResult(
        source=source.name,
        mode=mode,
        run=run.run_dir,
        manifest=manifest,
        exit_code=0 if complete else 1,
        duration=clock.monotonic() - t0,
        failed=tuple(ctx.failed),
    )


def _now(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock.time(), UTC)


def _open(
    source: Source,
    source_dir: Location,
    mode: Mode,
    output: OutputConfig,
    resume: bool,
    clock: Clock,
) -> tuple[dict[str, object], RunState]:
    """The source's state, then its run directory (new, or with ``resume`` the unfinished one).

    The state first: a state.json that can be neither read nor rebuilt stops the run before a
    run directory is made.
    """
    state = recover_source_state(
        source_dir, source=source.name, mode=mode, rebuild=source.state_from
    )
    run = RunState.open(
        source_dir,
        source=source.name,
        mode=mode,
        output=output,
        key_of=source.key_of,
        resume=resume,
        now=_now(clock),
    )
    return state, run


async def _harvest(source: Source, ctx: RunContext) -> bool:
    """Let the source harvest; True if it was cancelled (SIGINT/SIGTERM), else False."""
    try:
        await source.harvest(ctx)
    except asyncio.CancelledError:
        return True
    except BaseExceptionGroup as group:
        # A source's task group wraps the fatal error that stopped it (AuthError, a disk
        # error): raise it as itself, so the CLI names it and exits with its code.
        fatal = [e for e in _leaves(group) if isinstance(e, HarvesterError)]
        if not fatal:
            raise
        raise fatal[0] from None
    return False


def _outcome(ctx: RunContext, complete: bool, config_digest: str) -> RunOutcome:
    return RunOutcome(
        complete=complete,
        config_digest=config_digest,
        partitions=ctx.partitions,
        checks=ctx.checks,
        transport=ctx.transport,
        rate_limit=ctx.rate_report() if ctx.rate_report is not None else {},
    )


def _log_transport(source: str, t: Mapping[str, object]) -> None:
    if t:
        via = f"via proxy {t['proxy']}" if t.get("proxy") else "direct"
        log.info(
            "%s: %s connection(s) opened (%s, %s); Accept-Encoding: %s (%s)",
            source,
            t.get("connections"),
            t.get("scheme"),
            via,
            t.get("accept_encoding"),
            t.get("accept_encoding_rule"),
        )
