"""DBK: SIGKILL at any moment, then --resume: the same records as an uninterrupted dump, once each.

The harvester runs as a process (its own session, so the kill takes its ONIX workers too) and
checkpoints every 100 records instead of every 50,000, so that kills land between checkpoints
with some windows finished and others half-written. The records must equal converting the
catalogue's ONIX, which is what an uninterrupted dump writes (tests/test_dbk_dump.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from harvester.output import read_lines, verify_run
from harvester.sim.books import BookCatalogue
from tests.expected import expected_dbk
from tests.harness import simulate

PRODUCTS, CAP = 1500, 100
HARVESTER = (
    "import sys, harvester.sources.dbk as dbk; dbk.CHECKPOINT_RECORDS = 100; "
    "from harvester.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _sim(seed: int) -> tuple[subprocess.Popen[str], str]:
    catalogue = (
        "--nobb-items",
        "10",
        "--dbk-products",
        str(PRODUCTS),
        "--dbk-max-products",
        str(CAP),
    )
    return simulate(*catalogue, "--seed", str(seed), "--latency-ms", "20", "--rate-limit", "0")


def _config(tmp: Path, url: str, workers: int) -> Path:
    cfg = tmp / "c.toml"
    cfg.write_text(
        f'[output]\ndir = "{tmp / "out"}"\nshard_max_records = 300\n'
        f'[dbk]\nbase_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
        f'rate_limit = "0"\nconcurrency = 2\nworkers = {workers}\n'
        f"max_products_per_response = {CAP}\n"
    )
    return cfg


def _dump(cfg: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", HARVESTER, "dump", "dbk", "--config", str(cfg),
            "--progress", "never", "-q", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("seed", "kill_after", "workers"), [(1, 0, 0), (2, 3, 0), (3, 7, 2), (4, 12, 0)]
)
def test_kill_then_resume_gives_every_product_once(
    tmp_path: Path, seed: int, kill_after: int, workers: int
) -> None:
    """SIGKILL once 0 to 12 windows are checkpointed (seeds 1-4), then --resume: exact records."""
    sim, url = _sim(seed)
    try:
        cfg = _config(tmp_path, url, workers)
        out = tmp_path / "out" / "dbk"
        with subprocess.Popen(_dump(cfg), start_new_session=True) as run:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and run.poll() is None:
                cps = list(out.glob("2*/checkpoint.json"))
                if cps and len(orjson.loads(cps[0].read_bytes())["done"]) >= kill_after:
                    break
                time.sleep(0.01)
            os.killpg(run.pid, signal.SIGKILL)
            assert run.wait() == -signal.SIGKILL  # killed mid-run, not finished
        (run_dir,) = out.glob("2*")
        assert not (run_dir / "manifest.json").exists()
        fresh = subprocess.run(_dump(cfg, "--resume"), capture_output=True, text=True, timeout=120)
        assert fresh.returncode == 0, fresh.stderr
        assert list(out.glob("2*")) == [run_dir]  # resumed in place, no second run
        manifest = verify_run(run_dir)
        assert manifest["complete"] is True
        assert not list(run_dir.glob(".*.tmp"))
        lines = list(read_lines(run_dir))
        keys = [orjson.loads(line)["record_reference"] for line in lines]
        assert len(keys) == len(set(keys)), "a product was written twice"
        books = BookCatalogue(PRODUCTS, seed, cap=CAP)
        assert dict(zip(keys, lines, strict=True)) == expected_dbk(books, range(books.size))
    finally:
        sim.terminate()
        sim.wait()
        assert sim.stdout is not None
        sim.stdout.close()
