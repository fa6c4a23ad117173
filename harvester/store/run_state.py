"""One run directory's commit protocol: open or resume, commit, checkpoint, manifest, state.

``RunState`` is everything a run writes, in the order that keeps it true after a crash at any
moment:

0. ``state_file.recover_source_state`` reads ``OUT/<source>/state.json``; a corrupt one is
   rebuilt from the newest complete run's manifest, or (nothing to rebuild from, for a sync)
   stops the run before anything is made (``StateError``, exit 2);
1. ``open`` (with the source directory's lock already held) creates a new run directory
   ``OUT/<source>/<run_id>`` with an empty checkpoint, or with ``resume`` reopens the newest
   unfinished run of the same mode: its kept shards verified, strays deleted, the key set
   rebuilt (``checkpoint.prepare_resume``). Without ``resume`` an unfinished run is left as it
   is (a warning names it): never mixed into a new one.
2. ``async with state:`` opens the run's ``ShardSink`` (``state.sink``); ``checkpoint``,
   ``save_positions``, ``save_plan`` and ``supersede`` make what is written so far durable and
   record it in ``checkpoint.json`` (written off the event loop, one snapshot at a time, so the
   last written is the newest).
3. ``finish`` commits the sink and writes ``manifest.json`` last, complete or not.
4. ``advance`` (a complete run only) replaces ``OUT/<source>/state.json``: the high-water marks
   the next sync starts from, and ``last_complete_run``.

The run directory may be a bucket prefix (``storage.BucketDir``): the same steps run against
objects.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import orjson

from harvester.config import OutputConfig
from harvester.errors import OutputError
from harvester.plural import counted
from harvester.store.checkpoint import CHECKPOINT, Checkpoint, find_resumable, prepare_resume
from harvester.store.keyset import Key, KeySet
from harvester.store.manifest import Manifest, ShardInfo, new_run_id, write_manifest
from harvester.store.sink import ShardSink
from harvester.store.state_file import STATE
from harvester.store.storage import Location

__all__ = ["RunOutcome", "RunState"]

_SHARD = re.compile(r"part-\d{5,}\.ndjson(?:\.gz|\.zst)?")
log = logging.getLogger("harvester.run")


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


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """What ``finish`` was told of the run: the manifest's parts that the source fills."""

    complete: bool
    config_digest: str
    partitions: Mapping[str, object]
    checks: Mapping[str, object]
    transport: Mapping[str, object]
    rate_limit: Mapping[str, object]
    #: A snapshot's merged runs (``Manifest.bases``).
    bases: tuple[Mapping[str, object], ...] = ()


class RunState:
    """The commit protocol of one run directory; see the module docstring."""

    def __init__(
        self,
        source_dir: Location,
        run_dir: Location,
        cp: Checkpoint,
        keys: KeySet,
        *,
        source: str,
        output: OutputConfig,
        key_of: Callable[[bytes], Key],
    ) -> None:
        self.source_dir = source_dir
        self.run_dir = run_dir
        self.source = source
        self.output = output
        self.key_of = key_of
        self._cp = cp
        self._keys = keys
        self._saving = asyncio.Lock()
        self._sink: ShardSink | None = None
        #: The checkpoint as opened (a resumed run's plan, finished partitions, positions).
        self.plan = cp.plan
        self.done: dict[str, dict[str, object]] = dict(cp.done)
        self.positions: dict[str, object] = dict(cp.positions)
        self.records_before = sum(s.records for s in cp.shards)
        self.started = datetime.fromisoformat(cp.started)

    @classmethod
    def open(
        cls,
        source_dir: Location,
        *,
        source: str,
        mode: str,
        output: OutputConfig,
        key_of: Callable[[bytes], Key],
        now: datetime,
        resume: bool = False,
    ) -> RunState:
        """A new run directory under ``source_dir``, or (``resume``) the unfinished one."""
        unfinished = find_resumable(source_dir, mode)
        if resume and unfinished is not None:
            _check_resumable(unfinished)
            cp, keys = prepare_resume(unfinished, key_of)
            log.info(
                "%s: resuming %s (%s kept)", source, unfinished, counted(len(cp.shards), "shard")
            )
            return cls(
                source_dir, unfinished, cp, keys, source=source, output=output, key_of=key_of
            )
        if unfinished is not None:
            log.warning(
                "%s: %s is unfinished and left as it is; --resume continues it", source, unfinished
            )
        dirs, files = source_dir.entries()
        run_dir = source_dir / new_run_id(now.astimezone(UTC), [*dirs, *files])
        if run_dir.local is not None:
            run_dir.local.mkdir()
        cp = Checkpoint(started=now.isoformat(), mode=mode)
        cp.save(run_dir)
        return cls(source_dir, run_dir, cp, KeySet(), source=source, output=output, key_of=key_of)

    @property
    def mode(self) -> str:
        return self._cp.mode

    @property
    def sink(self) -> ShardSink:
        """The run's sink (inside ``async with``)."""
        if self._sink is None:
            raise RuntimeError("RunState.sink is only open inside 'async with'")
        return self._sink

    @property
    def shards(self) -> list[ShardInfo]:
        """The shards the checkpoint lists now."""
        return list(self._cp.shards)

    async def __aenter__(self) -> RunState:
        out = self.output
        self._sink = ShardSink(
            self.run_dir,
            keys=self._keys,
            existing=self._cp.shards,
            compression=out.compression,
            gzip_level=out.gzip_level,
            shard_max_records=out.shard_max_records,
            shard_max_bytes=out.shard_max_bytes,
        )
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sink is not None:
            await self._sink.aclose()

    async def _save(self) -> None:
        # The write (an fsync, or a PUT to a bucket) runs off the event loop, so the walks go
        # on meanwhile; the lock keeps the snapshots in order: each is taken once the previous
        # one is written, so the last written is the newest.
        async with self._saving:
            await asyncio.to_thread(self.run_dir.write, CHECKPOINT, self._cp.encode())

    async def checkpoint(self, done: Mapping[str, dict[str, object]]) -> None:
        """Make every record written so far durable, and record ``done``'s partitions finished."""
        self._cp.shards = await self.sink.commit()
        self._cp.done.update(done)
        await self._save()

    async def save_positions(self, positions: dict[str, object]) -> None:
        """Make every record written so far durable, with the unfinished walks' positions."""
        self._cp.shards = await self.sink.commit()
        self._cp.positions = positions
        await self._save()

    async def save_plan(self, plan: list[list[str | None]]) -> None:
        """Record a new run's partition plan, so a resume walks the same partitions."""
        self._cp.plan = plan
        await self._save()

    async def supersede(self, newer: Mapping[Key, bytes]) -> int:
        """Replace the committed lines of ``newer``'s keys by its lines; how many were replaced."""
        replaced = 0
        key_of = self.key_of

        def edit(lines: list[bytes]) -> list[bytes] | None:
            nonlocal replaced
            out = [newer.get(key_of(line), line) for line in lines]
            changed = sum(a is not b for a, b in zip(out, lines, strict=True))
            replaced += changed
            return out if changed else None

        old = await self.sink.rewrite(edit)
        self._cp.shards = list(self.sink.shards)
        await self._save()
        for name in old:  # only now: the checkpoint no longer lists them
            await asyncio.to_thread(self.run_dir.delete, name)
        return replaced

    async def drop_lines(
        self, lines: AbstractSet[bytes], once: AbstractSet[bytes] = frozenset()
    ) -> int:
        """Remove these exact lines from the committed shards, and every copy but the first of
        the lines in ``once``; how many lines were removed."""
        removed = 0
        seen: set[bytes] = set()

        def edit(old: list[bytes]) -> list[bytes] | None:  # called shard by shard, in order
            nonlocal removed
            out = []
            for line in old:
                if line in once:
                    if line in seen:
                        continue
                    seen.add(line)
                elif line in lines:
                    continue
                out.append(line)
            removed += len(old) - len(out)
            return out if len(out) != len(old) else None

        old = await self.sink.rewrite(edit)
        self._cp.shards = list(self.sink.shards)
        await self._save()
        for name in old:
            await asyncio.to_thread(self.run_dir.delete, name)
        return removed

    async def finish(self, outcome: RunOutcome, *, finished: datetime) -> Manifest:
        """Commit the sink, then write ``manifest.json`` last; returns the manifest."""
        shards = await self.sink.commit()
        self._cp.shards = shards
        manifest = Manifest(
            source=self.source,
            mode=self.mode,
            complete=outcome.complete,
            shards=tuple(shards),
            started=self.started,
            finished=finished,
            config_digest=outcome.config_digest,
            run_id=self.run_dir.name,
            compression=self.output.compression,
            partitions=outcome.partitions,
            checks=outcome.checks,
            transport=outcome.transport,
            rate_limit=outcome.rate_limit,
            bases=outcome.bases,
        )
        await asyncio.to_thread(write_manifest, self.run_dir, manifest)
        return manifest

    async def advance(self, state: dict[str, object], manifest: Manifest) -> None:
        """After a complete run: write ``state`` plus ``last_complete_run`` as state.json."""
        state["last_complete_run"] = {
            "run_id": self.run_dir.name,
            "mode": self.mode,
            "records": manifest.records,
        }
        data = orjson.dumps(state, option=orjson.OPT_INDENT_2)
        await asyncio.to_thread(self.source_dir.write, STATE, data)
