"""``harvester compact``: the newest complete base and every complete sync after it, merged.

The base is the newest complete snapshot or dump, whichever covers more recent runs (a
snapshot covers the newest run it merged; a dump itself). The inputs are the base and every
complete sync newer than what the base covers, in run order. The snapshot is a new run
``OUT/<source>/<run_id>/`` of mode ``snapshot``, written through ``store.run_state.RunState``
like any run (sharded NDJSON, atomic shards, manifest last, the source's lock, ``--resume``,
local disk or ``s3://``), by ``store.merge.Merge``: each key once in its newest version, DBK
deletes left out unless ``--keep-deleted``, every line byte for byte as it was written.

Before anything is made, every input shard is checked against its manifest (size and sha256):
a mismatch is exit 1 with nothing written. The checkpoint's plan names the inputs (run id and
manifest sha256), so ``--resume`` merges the same runs. With nothing new since the current
snapshot, it says so and writes nothing (exit 0). Once the manifest is written,
``OUT/<source>/current.json`` (``run_id``, ``as_of``, ``records``) is replaced atomically.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from harvester.config import OutputConfig
from harvester.engine.clock import Clock, SystemClock
from harvester.errors import ConfigError, HarvesterError, OutputError
from harvester.plural import counted
from harvester.store.lock import run_lock
from harvester.store.manifest import Manifest
from harvester.store.merge import Merge, Rules, changed_at, is_deleted, verify_shards
from harvester.store.merge_inputs import SNAPSHOT, Input, find_inputs, planned_inputs
from harvester.store.output import CURRENT
from harvester.store.run_state import RunOutcome, RunState
from harvester.store.storage import Location, location

__all__ = [
    "CompactResult",
    "compact_all",
    "compact_source",
    "find_inputs",
    "rules_for",
    "run_command",
]

log = logging.getLogger("harvester.compact")
_NOBB_PREFIX = b'{"nobbNumber":'
_DBK_PREFIX = b'{"record_reference":"'


def _nobb_key(line: bytes) -> int:
    if line.startswith(_NOBB_PREFIX):  # items start with their number as served
        end = line.find(b",", len(_NOBB_PREFIX))
        digits = line[len(_NOBB_PREFIX) : end]
        if digits.isdigit():
            return int(digits)
    return int(orjson.loads(line)["nobbNumber"])


def _dbk_key(line: bytes) -> str:
    if line.startswith(_DBK_PREFIX):  # parse/onix.py writes the key first
        end = line.find(b'"', len(_DBK_PREFIX))
        key = line[len(_DBK_PREFIX) : end]
        if end > 0 and b"\\" not in key:
            return key.decode()
    return str(orjson.loads(line)["record_reference"])


def rules_for(source: str, *, keep_deleted: bool = False) -> Rules:
    """The merge rules of a source: NOBB by nobbNumber (no deletes), DBK by record reference."""
    if source == "nobb":
        return Rules(key_of=_nobb_key, changed=changed_at("status", "lastModifiedDate"))
    return Rules(
        key_of=_dbk_key,
        changed=changed_at("updated"),
        deleted=is_deleted,
        keep_deleted=keep_deleted,
    )


@dataclass(frozen=True, slots=True)
class CompactResult:
    """How one source's compaction ended: a manifest, or None when there was nothing new."""

    source: str
    run: Location | None
    manifest: Manifest | None
    message: str
    exit_code: int = 0

    def summary_line(self) -> str:
        return f"{self.source} compact: {self.message}"


async def compact_source(
    source: str,
    *,
    output: OutputConfig,
    out_dir: Location | Path | str,
    resume: bool = False,
    keep_deleted: bool = False,
    config_digest: str = "",
    clock: Clock | None = None,
) -> CompactResult:
    """Merge ``source``'s newest base and the syncs after it into a new snapshot run."""
    clock = clock or SystemClock()
    source_dir = location(out_dir, retry_seconds=output.store_retry_seconds) / source
    with run_lock(source_dir, output.lock_lease_seconds):
        inputs = _inputs(source_dir, resume)
        if isinstance(inputs, CompactResult):
            return inputs
        for one in inputs:  # before anything is made: a bad input leaves nothing behind
            verify_shards(one.where, one.manifest)
        rules = rules_for(source, keep_deleted=keep_deleted)
        key_of = rules.key_of
        now = datetime.fromtimestamp(clock.time(), UTC)
        run = RunState.open(
            source_dir,
            source=source,
            mode=SNAPSHOT,
            output=output,
            key_of=key_of,
            now=now,
            resume=resume,
        )
        async with run:
            if run.plan is None:
                await run.save_plan([[one.run_id, one.sha256] for one in inputs])
            manifest = await _merge(run, inputs, rules, clock, output, config_digest)
        as_of = inputs[-1].as_of
        current = {"run_id": run.run_dir.name, "as_of": as_of, "records": manifest.records}
        source_dir.write(CURRENT, orjson.dumps(current, option=orjson.OPT_INDENT_2))
    merged = counted(len(inputs), "run")
    message = (
        f"{counted(manifest.records, 'record')} from {merged} "
        f"({manifest.checks['replaced']} replaced, "
        f"{manifest.checks['deleted_dropped']} deleted) -> {run.run_dir}"
    )
    return CompactResult(source, run.run_dir, manifest, message)


def _inputs(source_dir: Location, resume: bool) -> list[Input] | CompactResult:
    """The runs to merge, or the result of a compaction that has nothing to do."""
    if resume:
        from harvester.store.checkpoint import Checkpoint, find_resumable

        unfinished = find_resumable(source_dir, SNAPSHOT)
        if unfinished is not None and (plan := Checkpoint.load(unfinished).plan):
            return planned_inputs(source_dir, plan)
    base, syncs = find_inputs(source_dir)
    if base is None:
        raise OutputError(f"{source_dir}: no complete dump to compact; run a dump first")
    if base.mode == SNAPSHOT and not syncs:
        why = f"nothing new since snapshot {base.run_id}; nothing written"
        return CompactResult(source_dir.name, None, None, why)
    return [base, *syncs]


async def _merge(
    run: RunState,
    inputs: list[Input],
    rules: Rules,
    clock: Clock,
    output: OutputConfig,
    digest: str,
) -> Manifest:
    """Merge ``inputs`` into the open ``run``, checkpointed as it goes; its manifest."""
    every = output.checkpoint_seconds
    merge = Merge(rules, skip=int(str(run.positions.get("visited", 0))))
    last = clock.monotonic()

    async def save() -> None:
        # While a resume replays what was written before (visited < skip) nothing is written:
        # the durable lines are still those of ``skip`` visited ones, never fewer.
        await run.save_positions({"visited": max(merge.counts.visited, merge.skip)})

    async def tick(visited: int) -> None:
        nonlocal last
        if clock.monotonic() - last >= every:
            last = clock.monotonic()
            await save()

    shards = [(i.run_id, i.where, [str(s["path"]) for s in i.manifest["shards"]]) for i in inputs]

    # Whatever makes written lines durable records how many lines were visited with them: a
    # resume replays exactly those without writing them again.
    async def merged(run_id: str, lines: int) -> None:
        await save()
        await run.checkpoint({run_id: {"ok": True, "lines": lines}})

    async def drop(losers: set[bytes], winners: set[bytes]) -> None:
        await save()
        await run.drop_lines(losers, winners)

    counts = await merge.run(shards, run.sink.write_lines, drop, tick, merged)
    written = await run.sink.commit()
    checks = {
        "records": sum(s.records for s in written),
        "replaced": counts.replaced,
        "deleted_dropped": counts.deleted_dropped,
        "deleted_kept": counts.deleted_kept,
        "duplicates_in_run": counts.duplicates_in_run,
        "as_of": inputs[-1].as_of,
        "runs": {i.run_id: int(i.manifest.get("records") or 0) for i in inputs},
    }
    outcome = RunOutcome(
        complete=True,
        config_digest=digest,
        partitions={},
        checks=checks,
        transport={},
        rate_limit={},
        bases=tuple(i.base_entry() for i in inputs),
    )
    return await run.finish(outcome, finished=datetime.fromtimestamp(clock.time(), UTC))


async def compact_all(
    sources: list[str],
    output: OutputConfig,
    out_dir: Path | str,
    *,
    resume: bool = False,
    keep_deleted: bool = False,
    config_digest: str = "",
) -> list[CompactResult]:
    """Compact each source in turn; a failure is that source's result (exit 1), not a raise."""
    results = []
    for name in sources:
        try:
            found = await compact_source(
                name,
                output=output,
                out_dir=out_dir,
                resume=resume,
                keep_deleted=keep_deleted,
                config_digest=config_digest,
            )
        except HarvesterError as exc:
            found = CompactResult(name, None, None, f"failed: {exc}", exc.exit_code or 1)
        results.append(found)
    return results


async def run_command(args: Any) -> int:
    """``harvester compact``: every named (or configured) source; the worst exit code."""
    from harvester.config_file import load_config
    from harvester.logs import setup_logging

    setup_logging(fmt=args.log_format, quiet=args.quiet, verbose=args.verbose)
    cfg = load_config(args.config)
    configured = [n for n in ("nobb", "dbk") if getattr(cfg, n) is not None]
    named = None if not args.source or "all" in args.source else set(args.source)
    missing = [n for n in named or () if n not in configured]
    if missing:
        raise ConfigError(f"no [{missing[0]}] section in the config {args.config}")
    picked = [n for n in configured if named is None or n in named]
    if not picked:
        raise ConfigError(f"no [nobb] or [dbk] section in the config {args.config}")
    out: Path | str = args.out if args.out is not None else cfg.output.dir
    results = await compact_all(
        picked,
        cfg.output,
        out,
        resume=args.resume,
        keep_deleted=args.keep_deleted,
        config_digest=cfg.digest(),
    )
    for r in results:
        print(r.summary_line(), file=sys.stderr)
    return max((r.exit_code for r in results), default=0)
