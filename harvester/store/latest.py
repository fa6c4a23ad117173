"""Latest versions: records a dump wrote before they changed, and their newer lines.

Both sources end a dump with a catch-up (NOBB: a partition ``from`` the run's start date; DBK: a
window from the run's start to now) that sees every record changed while the dump ran. A record
the catch-up meets that the sink already has is a newer version of a line in the shards, unless
it is the very same line: a NOBB item changed earlier on the run's start day was walked by the
main partitions and is met again unchanged, so those items are fingerprinted when written
(8-byte BLAKE2b) and an identical line is not taken for a newer one. The newer lines then replace
the old ones through ``RunState.supersede``, so the dump holds each key once, in its latest
version. At most ``limit`` are kept (memory); past that, the rest keep their first version, the
manifest says how many, and the next sync carries them.
"""

from __future__ import annotations

import hashlib

from harvester.plural import counted
from harvester.store.keyset import Key

__all__ = ["NEWER_MAX", "LatestVersions"]

NEWER_MAX = 100_000


def _print(line: bytes) -> bytes:
    return hashlib.blake2b(line, digest_size=8).digest()


class LatestVersions:
    """Collects newer versions during a catch-up (module docstring)."""

    def __init__(self, limit: int = NEWER_MAX) -> None:
        self.limit = limit
        self.newer: dict[Key, bytes] = {}
        self.dropped = 0
        self._prints: dict[Key, bytes] = {}
        self._late: set[Key] = set()

    def fingerprint(self, key: Key, line: bytes) -> None:
        """A record written before the catch-up that it may meet again unchanged."""
        self._prints[key] = _print(line)

    def written(self, key: Key) -> None:
        """The catch-up wrote ``key`` first: a repeat of it later is not a newer version."""
        self._late.add(key)

    def met_again(self, key: Key, line: bytes) -> None:
        """The catch-up met ``key``, which the sink already had: keep ``line`` if it is newer."""
        if key in self._late:
            return
        seen = self._prints.get(key)
        if seen is not None and seen == _print(line):
            return
        if len(self.newer) < self.limit or key in self.newer:
            self.newer[key] = line
        else:
            self.dropped += 1

    def note(self) -> str | None:
        """The manifest note when some newer versions could not be kept."""
        if not self.dropped:
            return None
        return (
            f"{counted(self.dropped, 'record')} changed during the run beyond the first "
            f"{self.limit:,}: "
            "they keep the version first seen; the next sync carries them"
        )
