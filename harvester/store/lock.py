"""One run at a time per output directory: an exclusive ``flock`` on ``OUT/<source>/.lock``.

The second run fails at once with ``LockedError`` (exit 75) naming the lock file and the holder's
PID and start time. The kernel drops the lock when the holder exits, however it exits, so a
SIGKILL never leaves a stale lock behind. In a bucket, ``run_lock`` gives the lease lock of
``lease.py`` instead (conditional create, renewed lease, taken over after it expires).
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

from harvester.errors import LockedError, OutputError
from harvester.store.lease import LeaseLock
from harvester.store.storage import BucketDir, Location

__all__ = ["RunLock", "run_lock"]


def run_lock(source_dir: Location, lease_seconds: float = 60.0) -> AbstractContextManager[object]:
    """The lock for one source directory: ``flock`` on local disk, a lease in a bucket."""
    if source_dir.local is not None:
        return RunLock(source_dir.local)
    assert isinstance(source_dir, BucketDir)
    return LeaseLock(source_dir, lease_seconds)


class RunLock:
    """``with RunLock(source_dir):`` holds the lock for the block (not reentrant)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / ".lock"
        self._fh: IO[str] | None = None

    def __enter__(self) -> RunLock:
        try:
            fh = open(self.path, "a+", encoding="utf-8")  # held until __exit__
        except OSError as exc:
            raise OutputError(f"cannot open lock file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise LockedError(
                f"{self.path} is held by {holder}: another run is using this output directory"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
