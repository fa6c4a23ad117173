"""What a source is to the run: a name, a key per record, and a harvest into a ``RunContext``.

A source turns configuration into requests and responses into records; it never touches files
(the sink does) or the event loop's tasks (the scheduler does). ``RunContext`` is the narrow view
of a run that a source gets: where records go, where to report partition results and cross-checks,
and the clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from harvester.engine.clock import Clock
from harvester.progress import Progress
from harvester.store.keyset import Key

# Key belongs to the key set (store/keyset.py); re-exported here for the sources.
__all__ = ["Key", "Mode", "RecordSink", "RunContext", "Source"]

Mode = Literal["dump", "sync"]


class RecordSink(Protocol):
    """Where records go: ``write`` returns False for a key already written in this run;
    ``write_many`` writes several in order and says which were new."""

    async def write(self, key: Key, line: bytes) -> bool: ...

    async def write_many(self, keys: Sequence[Key], lines: Sequence[bytes]) -> list[bool]: ...


@dataclass(slots=True, kw_only=True)
class RunContext:
    """One run of one source, as the source sees it."""

    source: str
    mode: Mode
    sink: RecordSink
    clock: Clock
    progress: Progress
    started: datetime
    #: A resumed run's partition plan (None for a new run) and its finished partitions.
    plan: list[list[str | None]] | None = None
    done: Mapping[str, dict[str, object]] = field(default_factory=dict)
    #: Called with {partition id: result} once those partitions' records are all written:
    #: makes them durable (one commit) and records the partitions as finished.
    checkpoint: Callable[[Mapping[str, dict[str, object]]], Awaitable[None]] | None = None
    #: Called with the unfinished walks' positions: makes every record written so far durable
    #: and records the positions with it, so a resume continues from them.
    save_positions: Callable[[dict[str, object]], Awaitable[None]] | None = None
    #: A resumed run's saved positions (see ``save_positions``).
    positions: Mapping[str, object] = field(default_factory=dict)
    #: Records already in the kept shards of a resumed run (0 for a new run).
    records_before: int = 0
    #: At most this many seconds between checkpoints (``output.checkpoint_seconds``).
    checkpoint_every: float = 60.0
    #: Called once with a new run's partition plan, so a resume walks the same partitions.
    save_plan: Callable[[list[list[str | None]]], Awaitable[None]] | None = None
    #: Called with {key: newer line} for records already written: their old lines are
    #: replaced in the committed shards (a record changed during a dump ends in its latest
    #: version, still once). Returns how many lines were replaced.
    supersede: Callable[[Mapping[Key, bytes]], Awaitable[int]] | None = None
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
    def failed(self) -> list[str]:
        """Ids of partitions that ended in failure."""
        return sorted(pid for pid, r in self.partitions.items() if not r.get("ok", False))


class Source(Protocol):
    """A harvestable API."""

    name: str

    def key_of(self, line: bytes) -> Key:
        """The exactly-once key of a written record (to rebuild the key set on resume)."""
        ...

    async def check(self) -> None:
        """Before the run writes anything: raise ``CertificateError`` if the API's TLS
        certificate does not verify (other failures are left to ``harvest``'s retries)."""
        ...

    async def harvest(self, ctx: RunContext) -> None:
        """Fetch everything this mode asks for into ``ctx.sink``; record partition results.

        Failures of single partitions are recorded in ``ctx.partitions`` and do not raise;
        ``AuthError`` and cancellation propagate.
        """
        ...
