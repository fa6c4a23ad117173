"""SIGKILL at any moment, then --resume: the same records as an uninterrupted dump, each once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from harvester.output import read_lines, verify_run
from tests.clocks import JumpClock
from tests.harness import cli, simulate


def _sim(items: int, seed: int) -> tuple[subprocess.Popen[str], str]:
    flags = ("--nobb-items", str(items), "--seed", str(seed), "--latency-ms", "20")
    return simulate(*flags, "--rate-limit", "0")


def _config(tmp: Path, url: str) -> Path:
    cfg = tmp / "c.toml"
    cfg.write_text(
        f'[output]\ndir = "{tmp / "out"}"\nshard_max_records = 700\n'
        f'[nobb]\nbase_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
        'rate_limit = "0"\npage_size = 100\nconcurrency = 4\npartitions = 6\n'
    )
    return cfg


def _harvester(*args: str, quiet: bool = True) -> list[str]:
    return [sys.executable, "-m", "harvester", *args, "--progress", "never",
            *(["-q"] if quiet else [])]  # fmt: skip


@pytest.mark.parametrize(("seed", "kill_after"), [(1, 1), (2, 2), (3, 0)])
def test_kill_then_resume_gives_every_item_once(tmp_path: Path, seed: int, kill_after: int) -> None:
    """After SIGKILL (with 0, 1 or 2 partitions checkpointed) --resume completes the same run."""
    items = 4000
    sim, url = _sim(items, seed)
    try:
        cfg = _config(tmp_path, url)
        out = tmp_path / "out" / "nobb"
        with subprocess.Popen(_harvester("dump", "nobb", "--config", str(cfg))) as run:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and run.poll() is None:
                cps = list(out.glob("2*/checkpoint.json"))
                if cps and len(orjson.loads(cps[0].read_bytes())["done"]) >= kill_after:
                    break
                time.sleep(0.02)
            run.send_signal(signal.SIGKILL)
            run.wait()
        (run_dir,) = out.glob("2*")
        fresh = subprocess.run(_harvester("dump", "nobb", "--config", str(cfg), "--resume"),
                               capture_output=True, text=True, timeout=120)  # fmt: skip
        assert fresh.returncode == 0, fresh.stderr
        assert list(out.glob("2*")) == [run_dir]  # resumed in place, no second run
        manifest = verify_run(run_dir)
        keys = [orjson.loads(line)["nobbNumber"] for line in read_lines(run_dir)]
        assert len(keys) == len(set(keys)) == items
        assert manifest["complete"] is True
    finally:
        sim.terminate()
        sim.wait()
        assert sim.stdout is not None
        sim.stdout.close()


def test_unfinished_run_is_not_mixed_into_a_new_one(tmp_path: Path) -> None:
    """Without --resume a new run starts beside the unfinished one, which stays untouched."""
    sim, url = _sim(2000, 4)
    try:
        cfg = _config(tmp_path, url)
        out = tmp_path / "out" / "nobb"
        with subprocess.Popen(_harvester("dump", "nobb", "--config", str(cfg))) as run:
            deadline = time.monotonic() + 60
            while not list(out.glob("2*/checkpoint.json")) and time.monotonic() < deadline:
                time.sleep(0.02)
            run.send_signal(signal.SIGKILL)
            run.wait()
        (old,) = out.glob("2*")
        before = sorted(p.name for p in old.iterdir())
        # Run ids have one-second resolution: this run's clock reads a second later than now.
        later = JumpClock(shift=1.0)
        code, _, stderr = asyncio.run(cli("dump", "nobb", "--config", str(cfg), clock=later))
        assert code == 0, stderr
        assert "left as it is" in stderr
        assert sorted(p.name for p in old.iterdir()) == before
        new = [p for p in out.glob("2*") if p != old]
        assert len(new) == 1
        assert verify_run(new[0])["records"] == 2000
    finally:
        sim.terminate()
        sim.wait()
        assert sim.stdout is not None
        sim.stdout.close()
