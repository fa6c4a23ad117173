"""SIGTERM and SIGINT drain a run: exit 130 and an incomplete manifest of whole shards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from harvester.output import verify_run


def _interrupt(tmp: Path, sim_flags: list[str], config: str, source: str, sig: signal.Signals,
               *, ready: str, group: bool) -> str:  # fmt: skip
    """Start a simulator and a dump; signal it once ``ready`` exists under OUT; its stderr."""
    sim_cmd = [sys.executable, "-m", "harvester", "simulate", "--port", "0", "--rate-limit", "0",
               *sim_flags]  # fmt: skip
    with subprocess.Popen(sim_cmd, stdout=subprocess.PIPE, text=True) as sim:
        try:
            assert sim.stdout is not None
            url = sim.stdout.readline().split()[-1]
            cfg = tmp / "c.toml"
            cfg.write_text(f'[output]\ndir = "{tmp / "out"}"\n' + config.format(url=url))
            cmd = [sys.executable, "-m", "harvester", "dump", source, "--config", str(cfg),
                   "--progress", "never"]  # fmt: skip
            with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                                  start_new_session=group) as run:  # fmt: skip
                deadline = time.monotonic() + 30
                while not list((tmp / "out").glob(ready)) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if group:
                    time.sleep(1.0)  # some windows in flight, workers busy
                    os.killpg(run.pid, sig)
                else:
                    run.send_signal(sig)
                _, err = run.communicate(timeout=60)
            assert run.returncode == 130, err
            return err
        finally:
            sim.terminate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_to_an_incomplete_manifest(tmp_path: Path, sig: signal.Signals) -> None:
    """A signal mid-dump ends with exit 130 and an incomplete but verifiable run."""
    config = (
        'shard_max_records = 200\n[nobb]\nbase_url = "{url}"\nusername = "harvester"\n'
        'password = "harvester"\nrate_limit = "0"\npage_size = 50\nconcurrency = 2\n'
    )
    err = _interrupt(tmp_path, ["--nobb-items", "3000", "--latency-ms", "150"], config, "nobb",
                     sig, ready="nobb/2*/part-*", group=False)  # fmt: skip
    assert "interrupted" in err
    out = tmp_path / "out" / "nobb"
    (run_dir,) = out.glob("2*")
    manifest = verify_run(run_dir)
    assert manifest["complete"] is False
    data = orjson.loads((run_dir / "manifest.json").read_bytes())
    assert 0 < data["records"] < 3000
    assert not list(run_dir.glob(".*.tmp"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_dbk_with_workers_drains_on_a_signal_to_the_group(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C or SIGTERM to the whole process group (pool workers too): exit 130, no traceback."""
    config = (
        '[dbk]\nbase_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
        'rate_limit = "0"\nworkers = 2\nconcurrency = 2\nmax_products_per_response = 100\n'
    )
    flags = ["--dbk-products", "3000", "--dbk-max-products", "100", "--no-bulk-second",
             "--latency-ms", "150"]  # fmt: skip
    err = _interrupt(tmp_path, flags, config, "dbk", sig, ready="dbk/2*/checkpoint.json",
                     group=True)  # fmt: skip
    assert "interrupted" in err and "Traceback" not in err, err
    out = tmp_path / "out" / "dbk"
    (run_dir,) = out.glob("2*")
    manifest = verify_run(run_dir)
    assert manifest["complete"] is False
    assert not list(run_dir.glob(".*.tmp"))


_STARTING = """
import asyncio, os, signal
from harvester.parse.onix import read_header
from harvester.parse.onix_pool import OnixConverter
from harvester.parse.onix_split import Batch, OnixSplitter, Prologue
from harvester.sim.books import BookCatalogue

caught = []
signal.signal(signal.SIGINT, lambda *_: caught.append("SIGINT"))


async def main():
    splitter = OnixSplitter()
    pieces = [*splitter.feed(b"".join(BookCatalogue(3000, 3).message(list(range(3000)), sent=0,
                                                                     number=1))),
              *splitter.close()]
    prologue = next(p for p in pieces if isinstance(p, Prologue))
    batches = [p for p in pieces if isinstance(p, Batch)]
    src = read_header(prologue.document)
    async with OnixConverter(3) as conv:  # this process and two workers
        futs = [conv.submit(prologue, src, b) for b in batches[:2]]  # each spawns a worker
        os.killpg(0, signal.SIGINT)  # while both are still starting up
        rows = [r for f in futs for r in await conv.result(f, label="t")]
    print(len(rows), len(futs), caught)


asyncio.run(main())
"""


def test_a_signal_while_workers_start_is_held_for_them() -> None:
    """Ctrl-C to the group while ONIX workers are still importing: they convert, no traceback."""
    proc = subprocess.run([sys.executable, "-c", _STARTING], capture_output=True, text=True,
                          timeout=60, start_new_session=True)  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    rows, batches, caught = proc.stdout.split(maxsplit=2)
    assert int(rows) > 0 and int(batches) == 2 and caught.strip() == "['SIGINT']"
