"""Disk failures: a full disk or a directory turned read-only mid-run, then --resume.

The harvester runs as a process. A full disk is ``RLIMIT_FSIZE`` (with SIGXFSZ ignored, a write
past the limit fails with EFBIG, "File too large", as a full disk fails with ENOSPC): any file
bigger than the limit cannot be written. Permission denied is the run directory made read-only
once the first partition is checkpointed; as root, which ignores permission bits, the
harvester runs without CAP_DAC_OVERRIDE (``setpriv``). Either way: exit 1 (``OutputError``)
with one line naming the path, no manifest claiming anything (absent, or valid JSON saying
incomplete), a checkpoint listing only whole shards, no temp file left, and a ``--resume``
once the disk is fixed that ends exact.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from harvester.output import read_lines, verify_run
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.store.checkpoint import Checkpoint
from tests.expected import expected_dbk, served_nobb
from tests.front import Front, Upstream

SETTINGS = SimSettings(nobb_items=1200, dbk_products=800, dbk_max_products=100, rate_limit=0,
                       seed=23)  # fmt: skip


def _disk_full(size: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return apply


async def _harvester(*argv: str, prefix: Sequence[str] = (), **popen: Any) -> tuple[int, str]:
    """``harvester ARGV`` as a process: its exit code and stderr (never hangs the suite)."""
    proc = await asyncio.create_subprocess_exec(
        *prefix, sys.executable, "-m", "harvester", *argv, "--progress", "never", "-q",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"harvester {' '.join(argv)} hung after a disk error")
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def _config(base: Path, url: str, source: str) -> Path:
    api = f'base_url = "{url}"\nusername = "harvester"\npassword = "harvester"\nrate_limit = "0"\n'
    extra = {"nobb": "page_size = 50\n", "dbk": "workers = 0\nmax_products_per_response = 100\n",
             # one partition after the other, so the permission test knows which write fails
             "nobb-sequential": "page_size = 50\nconcurrency = 1\ntwo_ended = false\n"
                                "partitions = 3\n"}  # fmt: skip
    cfg = base / f"{source}.toml"
    section = source.split("-")[0]
    cfg.write_text(f'[output]\ndir = "{base / "out"}"\n[{section}]\n{api}{extra[source]}')
    cfg.chmod(0o644)
    return cfg


def _stopped_cleanly(run_dir: Path) -> None:
    """No manifest claims anything; the checkpoint is valid and lists only whole shards."""
    manifest = run_dir / "manifest.json"
    if manifest.exists():
        assert orjson.loads(manifest.read_bytes())["complete"] is False
    for shard in Checkpoint.load(run_dir).shards:
        data = (run_dir / shard.path).read_bytes()
        assert len(data) == shard.bytes
    assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


async def _exact(source: str, sim: Simulator, run_dir: Path) -> None:
    verify_run(run_dir)
    lines = list(read_lines(run_dir))
    key = "nobbNumber" if source == "nobb" else "record_reference"
    keys = [orjson.loads(line)[key] for line in lines]
    assert len(keys) == len(set(keys)), "a record was written twice"
    if source == "nobb":
        assert dict(zip(keys, lines, strict=True)) == await served_nobb(sim, SETTINGS)
    else:
        books = sim.ctx.books
        assert dict(zip(keys, lines, strict=True)) == expected_dbk(books, range(books.size))


@pytest.mark.parametrize("source", ["nobb", "dbk"])
async def test_disk_full_then_resume(tmp_path: Path, source: str) -> None:
    """Files over 4 KB fail with EFBIG: exit 1 naming the shard; --resume with room is exact."""
    async with Simulator(SETTINGS) as sim:
        cfg = _config(tmp_path, sim.url, source)
        code, err = await _harvester("dump", source, "--config", str(cfg),
                                     preexec_fn=_disk_full(4096))  # fmt: skip
        (run_dir,) = (tmp_path / "out" / source).glob("2*")
        assert code == 1, err
        assert err == f"error: cannot write {run_dir}/.part-00000.ndjson.gz.tmp: File too large\n"
        _stopped_cleanly(run_dir)
        code, err = await _harvester("dump", source, "--config", str(cfg), "--resume")
        assert code == 0, err
        assert list((tmp_path / "out" / source).glob("2*")) == [run_dir]
        await _exact(source, sim, run_dir)


def _without_root_powers() -> list[str]:
    """A command prefix under which permission bits apply (root ignores them), or a skip."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("as root, permission bits are ignored; dropping CAP_DAC_OVERRIDE needs setpriv")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


async def test_permission_denied_mid_run_then_resume(tmp_path: Path) -> None:
    """The run directory turns read-only after one partition: exit 1 naming the path; resume."""
    prefix = _without_root_powers()
    out = tmp_path / "out" / "nobb"
    locked: list[Path] = []

    async def lock_after_first_partition(request: web.Request, up: Upstream) -> None:
        done = list(out.glob("2*/checkpoint.json"))
        if not locked and done and orjson.loads(done[0].read_bytes())["done"]:
            locked.append(done[0].parent)
            done[0].parent.chmod(0o555)

    async with Simulator(SETTINGS) as sim, Front(sim, lock_after_first_partition) as front:
        cfg = _config(tmp_path, front.url, "nobb-sequential")
        code, err = await _harvester("dump", "nobb", "--config", str(cfg), prefix=prefix)
        assert locked, err
        (run_dir,) = locked
        assert code == 1, err
        assert err == (
            f"error: cannot create {run_dir}/.part-00001.ndjson.gz.tmp: Permission denied\n"
        )
        run_dir.chmod(0o755)
        _stopped_cleanly(run_dir)
        code, err = await _harvester("dump", "nobb", "--config", str(cfg), "--resume")
        assert code == 0, err
        assert list(out.glob("2*")) == [run_dir]
        await _exact("nobb", sim, run_dir)


def test_a_manifest_that_does_not_fit_leaves_the_old_one_whole(tmp_path: Path) -> None:
    """A manifest write on a full disk fails naming it; the old file stays whole, no temp file."""
    old = tmp_path / "manifest.json"
    old.write_bytes(b'{"complete": false}')
    code = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from harvester.store.manifest import atomic_write\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        "    atomic_write(Path(sys.argv[1]), b'{}' * 10_000)\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(old)], capture_output=True,
                          text=True, check=True, timeout=60)  # fmt: skip
    assert done.stdout == f"OutputError cannot write {old}: File too large\n"
    assert old.read_bytes() == b'{"complete": false}'
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
