"""What a source is to the run: a name, a key per record, and a harvest into a ``RunContext``.

A source turns configuration into requests and responses into records; it never touches files
(the sink does) or the event loop's tasks (the scheduler does). ``RunContext`` is the narrow view
of a run that a source gets: where records go, where to report partition results and cross-checks,
and the clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from harvester.engine.clock import Clock
from harvester.progress import Progress
from harvester.store.keyset import Key
from harvester.store.run_state import RunState

# Key belongs to the key set (store/keyset.py); re-exported here for the sources.
__all__ = ["Key", "Mode", "RecordSink", "RunContext", "Source"]

Mode = Literal["dump", "sync"]


class RecordSink(Protocol):
    """Where records go: ``write`` returns False for a key already written in this run;
    ``write_many`` writes several in order and says which were new; ``write_block`` does
    the same for records laid out as NDJSON in ``data``, ``ends`` the offset after each
    record's newline (``ShardSink.write_block``)."""

    async def write(self, key: Key, line: bytes) -> bool: ...

    async def write_many(self, keys: Sequence[Key], lines: Sequence[bytes]) -> list[bool]: ...

    async def write_block(
        self, keys: Sequence[Key], data: bytes | bytearray | memoryview, ends: list[int]
    ) -> list[bool]: ...


@dataclass(slots=True, kw_only=True)
class RunContext:
    """One run of one source, as the source sees it."""

    source: str
    mode: Mode
    clock: Clock
    progress: Progress
    #: The run directory's commit protocol: ``run.sink`` is where records go;
    #: ``run.checkpoint({partition id: result})`` makes those partitions' records durable and
    #: records them finished; ``run.save_positions`` the unfinished walks' positions with every
    #: record so far; ``run.save_plan`` a new run's partition plan; ``run.supersede({key: newer
    #: line})`` replaces lines already committed (a record changed during a dump ends in its
    #: latest version, still once).
    run: RunState
    #: At most this many seconds between checkpoints (``output.checkpoint_seconds``).
    checkpoint_every: float = 60.0
    #: The source's saved state from the last complete run (high-water marks, learned plans).
    source_state: Mapping[str, object] = field(default_factory=dict)
    #: Filled by the source: partition id → result (``{"ok": true, ...}`` or an error).
    partitions: dict[str, dict[str, object]] = field(default_factory=dict)
    #: Filled by the source: cross-checks for the manifest (e.g. x-totalHits vs written).
    checks: dict[str, object] = field(default_factory=dict)
    #: Set by the source: its limiter's report, the manifest's ``rate_limit`` object.
    rate_report: Callable[[], dict[str, object]] | None = None
    #: Filled by the source: the state a complete run leaves for the next sync.
    next_state: dict[str, object] = field(default_factory=dict)
    #: Filled by the source's HTTP client: connections opened, scheme, proxy (no credentials).
    transport: dict[str, object] = field(default_factory=dict)

    @property
    def sink(self) -> RecordSink:
        """Where records go (the run's ``ShardSink``)."""
        return self.run.sink

    @property
    def started(self) -> datetime:
        """When the run began (a resumed run: when it first began)."""
        return self.run.started

    @property
    def plan(self) -> list[list[str | None]] | None:
        """A resumed run's partition plan (None for a new run)."""
        return self.run.plan

    @property
    def done(self) -> Mapping[str, dict[str, object]]:
        """A resumed run's finished partitions: {partition id: result}."""
        return self.run.done

    @property
    def positions(self) -> Mapping[str, object]:
        """A resumed run's saved walk positions (see ``RunState.save_positions``)."""
        return self.run.positions

    @property
    def records_before(self) -> int:
        """Records already in the kept shards of a resumed run (0 for a new run)."""
        return self.run.records_before

    @property
    def failed(self) -> list[str]:
        """Ids of partitions that ended in failure."""
        return sorted(pid for pid, r in self.partitions.items() if not r.get("ok", False))


class Source(Protocol):
    """A harvestable API."""

    name: str

    def key_of(self, line: bytes) -> Key:
        """The exactly-once key of a written record (to rebuild the key set on resume)."""
        ...

    def state_from(self, manifest: Mapping[str, object]) -> dict[str, object]:
        """What a complete run with this manifest left in ``next_state``, rebuilt from the
        manifest alone (for a ``state.json`` that is lost or corrupt)."""
        ...

    async def check(self) -> None:
        """Before the run writes anything: raise ``CertificateError`` if the API's TLS
        certificate does not verify (other failures are left to ``harvest``'s retries)."""
        ...

    async def harvest(self, ctx: RunContext) -> None:
        """Fetch everything this mode asks for into ``ctx.sink``; record partition results.

        Failures of single partitions are recorded in ``ctx.partitions`` and do not raise;
        ``AuthError``, ``OutputError`` (the disk or the store) and cancellation propagate.
        """
        ...
