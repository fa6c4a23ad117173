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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_to_an_incomplete_manifest(tmp_path: Path, sig: signal.Signals) -> None:
    """A signal mid-dump ends with exit 130 and an incomplete but verifiable run."""
    sim_cmd = [sys.executable, "-m", "harvester", "simulate", "--port", "0", "--nobb-items",
               "3000", "--latency-ms", "150", "--rate-limit", "0"]  # fmt: skip
    with subprocess.Popen(sim_cmd, stdout=subprocess.PIPE, text=True) as sim:
        try:
            assert sim.stdout is not None
            url = sim.stdout.readline().split()[-1]
            cfg = tmp_path / "c.toml"
            cfg.write_text(
                f'[output]\ndir = "{tmp_path / "out"}"\nshard_max_records = 200\n'
                f'[nobb]\nbase_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
                'rate_limit = "0"\npage_size = 50\nconcurrency = 2\n'
            )
            cmd = [sys.executable, "-m", "harvester", "dump", "nobb", "--config", str(cfg),
                   "--progress", "never"]  # fmt: skip
            with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True) as run:
                deadline = time.monotonic() + 30
                out = tmp_path / "out" / "nobb"
                while not list(out.glob("2*/part-*")) and time.monotonic() < deadline:
                    time.sleep(0.05)  # wait until at least one shard is final
                run.send_signal(sig)
                _, err = run.communicate(timeout=60)
            assert run.returncode == 130, err
            assert "interrupted" in err
        finally:
            sim.terminate()
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
    sim_cmd = [sys.executable, "-m", "harvester", "simulate", "--port", "0", "--dbk-products",
               "3000", "--dbk-max-products", "100", "--no-bulk-second", "--latency-ms", "150",
               "--rate-limit", "0"]  # fmt: skip
    with subprocess.Popen(sim_cmd, stdout=subprocess.PIPE, text=True) as sim:
        try:
            assert sim.stdout is not None
            url = sim.stdout.readline().split()[-1]
            cfg = tmp_path / "c.toml"
            cfg.write_text(
                f'[output]\ndir = "{tmp_path / "out"}"\n'
                f'[dbk]\nbase_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
                'rate_limit = "0"\nworkers = 2\nconcurrency = 2\nmax_products_per_response = 100\n'
            )
            cmd = [sys.executable, "-m", "harvester", "dump", "dbk", "--config", str(cfg),
                   "--progress", "never"]  # fmt: skip
            with subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                                  start_new_session=True) as run:  # fmt: skip
                deadline = time.monotonic() + 30
                out = tmp_path / "out" / "dbk"
                while not list(out.glob("2*/checkpoint.json")) and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(1.0)  # some windows in flight, workers busy
                os.killpg(run.pid, sig)
                _, err = run.communicate(timeout=60)
            assert run.returncode == 130, err
            assert "interrupted" in err and "Traceback" not in err, err
        finally:
            sim.terminate()
    (run_dir,) = out.glob("2*")
    manifest = verify_run(run_dir)
    assert manifest["complete"] is False
    assert not list(run_dir.glob(".*.tmp"))
