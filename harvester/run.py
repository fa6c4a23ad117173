"""One run of one source, from lock to manifest.

``run_source`` is the commit protocol in one place:

0. let the source check its API's TLS certificate (``Source.check``): one that does not verify
   stops the source here, before anything is written (``CertificateError``, exit 2);
1. take the source directory's lock (a second run exits at once: ``LockedError``, exit 75);
2. create a new run directory ``OUT/<source>/<run_id>``, or with ``resume`` reopen the newest
   unfinished run of the same mode from its checkpoint (``checkpoint.py``). Without ``resume``
   an unfinished run is left as it is (a warning names it): never mixed into a new one;
3. let the source harvest into the sink;
4. commit the sink (every record in final shards), then write ``manifest.json`` last, complete or
   not, and only for a complete run advance the source's high-water marks in
   ``OUT/<source>/state.json``.

``out_dir`` may be a bucket prefix (``s3://bucket/prefix``, see ``storage.py``): the same steps
run against objects, the lock being a lease (``lease.py``).

Cancellation (SIGINT/SIGTERM) lands in step 3: what is whole is committed, the manifest says
incomplete, and ``Interrupted`` (exit 130) is raised.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from harvester.config import OutputConfig
from harvester.engine.clock import Clock, SystemClock
from harvester.errors import HarvesterError, Interrupted, OutputError
from harvester.plural import counted
from harvester.progress import Progress
from harvester.sources.base import Mode, RunContext, Source
from harvester.store.checkpoint import CHECKPOINT, Checkpoint, find_resumable, prepare_resume
from harvester.store.keyset import Key, KeySet
from harvester.store.lock import run_lock
from harvester.store.manifest import Manifest, new_run_id, write_manifest
from harvester.store.sink import ShardSink
from harvester.store.storage import Location, location

__all__ = ["RunResult", "load_source_state", "run_source"]

STATE = "state.json"
_SHARD = re.compile(r"part-\d{5,}\.ndjson(?:\.gz|\.zst)?")
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


def _check_resumable(run_dir: Location) -> None:
    """Write only inside ``OUT/<source>/``: a real run directory, listing only its own shards."""
    if run_dir.local is not None and run_dir.local.is_symlink():
        raise OutputError(f"{run_dir} is a symbolic link, not a run directory; not resumed")
    for shard in Checkpoint.load(run_dir).shards:
        if not _SHARD.fullmatch(shard.path):
            raise OutputError(
                f"{run_dir.show(CHECKPOINT)}: {shard.path!r} is not a shard of this run; "
                "not resumed"
            )


def load_source_state(source_dir: Location | Path) -> dict[str, object]:
    """``OUT/<source>/state.json``: what the last complete run left for the next sync."""
    src = location(source_dir)
    raw = src.read(STATE)
    if raw is None:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise OutputError(f"cannot read {src.show(STATE)}: {exc}") from exc
    return data if isinstance(data, dict) else {}


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
        started = datetime.fromtimestamp(clock.time(), UTC)
        unfinished = find_resumable(source_dir, mode)
        if resume and unfinished is not None:
            run_dir = unfinished
            _check_resumable(run_dir)
            cp, keys = prepare_resume(run_dir, source.key_of)
            started = datetime.fromisoformat(cp.started)
            log.info("%s: resuming %s (%s kept)", source.name, run_dir,
                     counted(len(cp.shards), "shard"))  # fmt: skip
        else:
            if unfinished is not None:
                log.warning("%s: %s is unfinished and left as it is; --resume continues it",
                            source.name, unfinished)  # fmt: skip
            dirs, files = source_dir.entries()
            run_dir = source_dir / new_run_id(started, [*dirs, *files])
            if run_dir.local is not None:
                run_dir.local.mkdir()
            cp, keys = Checkpoint(started=started.isoformat(), mode=mode), KeySet()
            cp.save(run_dir)
        state = load_source_state(source_dir)
        interrupted = False
        async with ShardSink(
            run_dir,
            keys=keys,
            existing=cp.shards,
            compression=output.compression,
            gzip_level=output.gzip_level,
            shard_max_records=output.shard_max_records,
            shard_max_bytes=output.shard_max_bytes,
        ) as sink:
            saving = asyncio.Lock()

            async def save() -> None:
                # The write (an fsync, or a PUT to a bucket) runs off the event loop, so the
                # walks go on meanwhile; the lock keeps the snapshots in order: each is taken
                # once the previous one is written, so the last written is the newest.
                async with saving:
                    await asyncio.to_thread(run_dir.write, CHECKPOINT, cp.encode())

            async def checkpoint(done: Mapping[str, dict[str, object]]) -> None:
                cp.shards = await sink.commit()
                cp.done.update(done)
                await save()

            async def supersede(newer: Mapping[Key, bytes]) -> int:
                replaced = 0

                def edit(lines: list[bytes]) -> list[bytes] | None:
                    nonlocal replaced
                    out = [newer.get(source.key_of(line), line) for line in lines]
                    changed = sum(a is not b for a, b in zip(out, lines, strict=True))
                    replaced += changed
                    return out if changed else None

                old = await sink.rewrite(edit)
                cp.shards = list(sink.shards)
                await save()
                for name in old:  # only now: the checkpoint no longer lists them
                    await asyncio.to_thread(run_dir.delete, name)
                return replaced

            async def save_positions(positions: dict[str, object]) -> None:
                shards = await sink.commit()
                cp.shards = shards
                cp.positions = positions
                await save()

            async def save_plan(plan: list[list[str | None]]) -> None:
                cp.plan = plan
                await save()

            ctx = RunContext(
                source=source.name,
                mode=mode,
                sink=sink,
                clock=clock,
                progress=progress,
                started=started,
                source_state=state,
                plan=cp.plan,
                done=dict(cp.done),
                checkpoint=checkpoint,
                save_plan=save_plan,
                supersede=supersede,
                save_positions=save_positions,
                positions=dict(cp.positions),
                records_before=sum(s.records for s in cp.shards),
                checkpoint_every=output.checkpoint_seconds,
            )
            progress.before = ctx.records_before  # the share done counts a resume's kept records
            try:
                await source.harvest(ctx)
            except asyncio.CancelledError:
                interrupted = True
            except BaseExceptionGroup as group:
                # A source's task group wraps the fatal error that stopped it (AuthError, a disk
                # error): raise it as itself, so the CLI names it and exits with its code.
                fatal = [e for e in _leaves(group) if isinstance(e, HarvesterError)]
                if not fatal:
                    raise
                raise fatal[0] from None
            shards = await sink.commit()
        complete = not interrupted and not ctx.failed
        manifest = Manifest(
            source=source.name,
            mode=mode,
            complete=complete,
            shards=tuple(shards),
            started=started,
            finished=datetime.fromtimestamp(clock.time(), UTC),
            config_digest=config_digest,
            run_id=run_dir.name,
            compression=output.compression,
            partitions=ctx.partitions,
            checks=ctx.checks,
            transport=ctx.transport,
            rate_limit=ctx.rate_report() if ctx.rate_report is not None else {},
        )
        await asyncio.to_thread(write_manifest, run_dir, manifest)
        if ctx.transport:
            t = ctx.transport
            via = f"via proxy {t['proxy']}" if t.get("proxy") else "direct"
            log.info("%s: %s connection(s) opened (%s, %s)", source.name, t.get("connections"),
                     t.get("scheme"), via)  # fmt: skip
        if complete:
            state.update(ctx.next_state)
            state["last_complete_run"] = {"run_id": run_dir.name, "mode": mode,
                                          "records": manifest.records}  # fmt: skip
            data = orjson.dumps(state, option=orjson.OPT_INDENT_2)
            await asyncio.to_thread(source_dir.write, STATE, data)
    if interrupted:
        raise Interrupted(f"{source.name}: interrupted; what was whole is in {run_dir}")
    return RunResult(
        source=source.name,
        mode=mode,
        run=run_dir,
        manifest=manifest,
        exit_code=0 if complete else 1,
        duration=clock.monotonic() - t0,
        failed=tuple(ctx.failed),
    )
