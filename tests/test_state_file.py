"""A corrupt ``state.json``: rebuilt from the newest complete run, or a stop before any run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from harvester.output import verify_run
from tests.harness import simulate


@pytest.fixture(scope="module")
def sim_url() -> Iterator[str]:
    """One simulator (3000 NOBB items, 600 DBK products) over a real socket for the module."""
    catalogue = ("--nobb-items", "3000", "--dbk-products", "600")
    proc, url = simulate(*catalogue, "--seed", "23", "--rate-limit", "0")
    assert proc.stdout is not None
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait()
        proc.stdout.close()


def _config(tmp: Path, url: str) -> Path:
    """The default client config: nothing but where the APIs are and who we are."""
    cfg = tmp / "c.toml"
    account = f'base_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
    cfg.write_text(f'[output]\ndir = "{tmp / "out"}"\n[nobb]\n{account}[dbk]\n{account}')
    return cfg


def _harvester(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "harvester", *args, "--config", str(cfg), "--progress", "never"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def dumped(sim_url: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """An output directory holding one complete dump of a source, made once for the module
    (the first time a test asks for that source); a test copies it rather than dumping again."""
    made: dict[str, Path] = {}

    def dump(source: str) -> Path:
        if source not in made:
            tmp = tmp_path_factory.mktemp(f"dump-{source}")
            done = _harvester(_config(tmp, sim_url), "dump", source)
            assert done.returncode == 0, done.stderr
            made[source] = tmp / "out"
        return made[source]

    return dump


@pytest.mark.parametrize("source", ["nobb", "dbk"])
@pytest.mark.parametrize("garbage", [b'{"high_water": "2026-', b"not json at all\n", b"[1, 2]"])
def test_a_corrupt_state_is_rebuilt_from_the_newest_complete_run(
    tmp_path: Path, sim_url: str, dumped: Callable[[str], Path], source: str, garbage: bytes
) -> None:
    """sync after state.json is truncated or not JSON: rebuilt as the dump left it, warned, 0."""
    shutil.copytree(dumped(source), tmp_path / "out")  # a complete dump, as `dump` leaves it
    cfg = _config(tmp_path, sim_url)
    state = tmp_path / "out" / source / "state.json"
    good = orjson.loads(state.read_bytes())
    state.write_bytes(garbage)
    done = _harvester(cfg, "sync", source)
    assert done.returncode == 0, done.stderr
    assert f"{state}" in done.stderr and "rebuilt" in done.stderr
    runs = sorted((tmp_path / "out" / source).glob("2*"))
    assert len(runs) == 2 and all(verify_run(r)["complete"] is True for r in runs)
    manifest = verify_run(runs[1])
    assert manifest["mode"] == "sync"
    after = orjson.loads(state.read_bytes())
    assert after["last_complete_run"]["run_id"] == runs[1].name
    assert after["high_water"] >= good["high_water"]
    if source == "nobb":  # the sync started from the dump's high-water mark, as if intact
        assert manifest["partitions"], manifest
    rebuilt_from = done.stderr.split("rebuilt from", 1)[1]
    assert runs[0].name in rebuilt_from


def test_a_corrupt_state_without_a_complete_run_stops_before_any_run(
    tmp_path: Path, sim_url: str
) -> None:
    """No complete run to rebuild from: exit 2 naming the file and the fix; no run directory."""
    cfg = _config(tmp_path, sim_url)
    source_dir = tmp_path / "out" / "nobb"
    source_dir.mkdir(parents=True)
    (source_dir / "state.json").write_bytes(b'{"high_wat')
    done = _harvester(cfg, "sync", "nobb")
    assert done.returncode == 2, done.stderr
    assert str(source_dir / "state.json") in done.stderr
    assert "harvester dump nobb" in done.stderr
    assert sorted(p.name for p in source_dir.iterdir()) == [".lock", "state.json"]
    status = subprocess.run([sys.executable, "-m", "harvester", "status", "--out",
                             str(tmp_path / "out")], capture_output=True, text=True)  # fmt: skip
    assert "--resume" not in status.stdout
