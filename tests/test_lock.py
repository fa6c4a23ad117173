"""RunLock: a second run on the same output fails at once; a dead holder leaves no lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harvester.errors import LockedError
from harvester.store.lock import RunLock


def test_second_holder_fails_at_once(tmp_path: Path) -> None:
    """While one process holds the lock, another gets LockedError naming the holder's pid."""
    code = (
        "import sys, time; from pathlib import Path; from harvester.store.lock import RunLock\n"
        "with RunLock(Path(sys.argv[1])):\n    print('held', flush=True); sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "held"
            with pytest.raises(LockedError, match=rf"held by pid {holder.pid} since") as info:
                RunLock(tmp_path).__enter__()
            assert info.value.exit_code == 75
        finally:
            holder.kill()
            holder.wait()
    with RunLock(tmp_path):  # the kernel released the killed holder's lock
        assert f"pid {os.getpid()}" in (tmp_path / ".lock").read_text()


def test_released_on_exit(tmp_path: Path) -> None:
    """The lock can be taken again once the block ends."""
    with RunLock(tmp_path):
        pass
    with RunLock(tmp_path):
        pass
