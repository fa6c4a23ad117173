"""Credentials never leave memory; nothing is written outside the paths the user chose.

The paths a user chooses on purpose, and the only ones the harvester writes to, are
``output.dir`` (or ``--out``), ``output.prometheus_file`` and ``--summary-json``. Everything else
is derived: ``OUT/<source>/`` from a fixed source name, ``<run_id>`` from the clock, shard names
from a counter. A resumed run is the one found by listing ``OUT/<source>/``, and the shards its
checkpoint lists must be plain shard names inside it. (``password_file`` is a path too, read
once at load time and never written.)
"""

from __future__ import annotations

import base64
import gzip
import re
import shutil
from dataclasses import fields
from pathlib import Path

import orjson
import pytest

from harvester.cli import build_parser, out_arg
from harvester.config import DbkConfig, NobbConfig, OutputConfig
from harvester.config_file import parse_config
from harvester.errors import ConfigError, OutputError
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.store.manifest import new_run_id
from tests.harness import cli, dump_nobb, harvest, sim_nobb_config

MARKER = "pw-MARKER-123"
#: What a leaked credential would look like: the password, the Basic header value, a JWT header.
NEEDLES = (
    MARKER.encode(),
    base64.b64encode(f"harvester:{MARKER}".encode()),
    b"eyJhbGciOiJIUzI1NiIs",
)


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _content(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


async def test_no_credential_in_anything_written_or_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both sources, flaky faults, -v JSON logs, then refused logins: no credential anywhere."""
    settings = SimSettings(nobb_items=800, dbk_products=600, dbk_max_products=100, rate_limit=0,
                           seed=5, faults="flaky", password=MARKER)  # fmt: skip
    work, out, reports = tmp_path / "cwd", tmp_path / "out", tmp_path / "reports"
    work.mkdir()
    reports.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HARVEST_PASSWORD", MARKER)
    summary, prom = reports / "summary.json", reports / "harvester.prom"
    async with Simulator(settings) as sim:
        api = (f'base_url = "{sim.url}"\nusername = "harvester"\n'
               'password = "${HARVEST_PASSWORD}"\nrate_limit = "0"\nretries = 4\n')  # fmt: skip
        cfg = tmp_path / "c.toml"
        cfg.write_text(
            f'[output]\ndir = "{out}"\nprometheus_file = "{prom}"\n'
            f"[nobb]\n{api}page_size = 50\n[dbk]\n{api}workers = 0\n"
            "max_products_per_response = 100\n"
        )
        before = _files(tmp_path)
        argv = ("dump", "all", "--config", str(cfg), "--summary-json", str(summary))
        code, stdout, stderr = await cli(*argv, "-v", "--log-format", "json")
        injected = dict(sim.ctx.faults.injected)
        assert sum(injected.values()) > 0
        monkeypatch.setenv("HARVEST_PASSWORD", MARKER + "-wrong")
        refused, stdout2, stderr2 = await cli(*argv, "-v")
    assert code == 0, stderr
    assert refused == 3
    assert "error: nobb: the server refused the credentials from nobb.username / nobb.password" in (
        stderr2
    )
    assert "error: dbk: the server refused the credentials from dbk.username / dbk.password" in (
        stderr2
    )
    # Faults fall on request identities, which move with the run's start time: a run may draw
    # only "slow" ones, which need no retry. Those that do were logged, in JSON, as warnings.
    if set(injected) - {"slow"}:
        assert '"level":"warning"' in stderr, injected
    written = _files(tmp_path) - before
    assert {p for p in written if not p.is_relative_to(out)} == {summary, prom}
    assert not list(work.iterdir())
    assert any(p.name.startswith("part-") for p in written)
    for path in written:
        assert not path.is_symlink() and path.resolve().is_relative_to(tmp_path.resolve())
        body = _content(path)
        assert not [n for n in NEEDLES if n in body], path
    for text in (stdout, stderr, stdout2, stderr2):
        assert not [n for n in NEEDLES if n in text.encode()], text


def test_the_user_chosen_paths_are_the_only_configurable_ones() -> None:
    """Config keys and flags that are paths: output.dir, output.prometheus_file, --out (a path
    or s3:// URL), --summary-json (written); --config, password_file, ca_file, status --out
    (read)."""
    path_keys = {
        f"{cls.__name__}.{f.name}"
        for cls in (OutputConfig, NobbConfig, DbkConfig)
        for f in fields(cls)
        if "Path" in str(f.type)
    }
    assert path_keys == {"OutputConfig.dir", "OutputConfig.prometheus_file",
                         "NobbConfig.ca_file", "DbkConfig.ca_file"}  # fmt: skip
    commands = {
        name: {flag for a in sub._actions if a.type in (Path, out_arg) for flag in a.option_strings}
        for action in build_parser()._actions
        if hasattr(action, "choices") and isinstance(action.choices, dict)
        for name, sub in action.choices.items()
    }
    assert commands["dump"] == commands["sync"] == {"--config", "--out", "--summary-json"}
    assert commands["status"] == {"--out"}
    assert commands["demo"] == {"--out"}


@pytest.mark.parametrize(
    "raw",
    [{"output": {"run_id": "../escape"}}, {"output": {"source_dir": "/tmp"}},
     {"nobb": {"name": "../escape", "username": "u", "password": "p"}}],
)  # fmt: skip
def test_run_and_source_names_cannot_come_from_the_config(raw: dict[str, object]) -> None:
    """A run id, source name or source directory in the config is an unknown key (exit 2)."""
    with pytest.raises(ConfigError, match="unknown key"):
        parse_config(raw, {})


def test_run_ids_are_generated_from_the_clock() -> None:
    """Run ids are a UTC time stamp with an optional counter: never a path."""
    from datetime import UTC, datetime

    now = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    assert new_run_id(now) == "20261122T020000Z"
    assert new_run_id(now, ["20261122T020000Z", "20261122T020000Z-1"]) == "20261122T020000Z-2"
    assert all(re.fullmatch(r"\d{8}T\d{6}Z(-\d+)?", new_run_id(now, ["x"] * n)) for n in range(3))


async def _unfinished(tmp_path: Path) -> Path:
    """A NOBB run made unfinished again (manifest gone), ready for --resume."""
    async with Simulator(SimSettings(nobb_items=300, rate_limit=0, seed=2)) as sim:
        result = await dump_nobb(sim, tmp_path / "out")
    (result.run_dir / "manifest.json").unlink()
    return result.run_dir


async def _resume(out: Path) -> None:
    async with Simulator(SimSettings(nobb_items=300, rate_limit=0, seed=2)) as sim:
        from harvester.sources.nobb import NobbSource

        await harvest(NobbSource(sim_nobb_config(sim)), out, resume=True)


async def test_a_checkpoint_naming_a_shard_outside_its_run_is_refused(tmp_path: Path) -> None:
    """A tampered checkpoint listing ../ as a shard is not resumed, and nothing outside changes."""
    run_dir = await _unfinished(tmp_path)
    checkpoint = orjson.loads((run_dir / "checkpoint.json").read_bytes())
    first = checkpoint["shards"][0]["path"]
    outside = tmp_path / "outside.ndjson.gz"
    shutil.copy(run_dir / first, outside)  # same bytes, so size and sha256 match
    checkpoint["shards"][0]["path"] = "../../../outside.ndjson.gz"
    (run_dir / "checkpoint.json").write_bytes(orjson.dumps(checkpoint))
    # The lock file records who last held it (and when): taking the lock rewrites it.
    before = {p: p.read_bytes() for p in _files(tmp_path) if p.name != ".lock"}
    with pytest.raises(OutputError) as info:
        await _resume(tmp_path / "out")
    assert str(info.value) == (
        f"{run_dir / 'checkpoint.json'}: '../../../outside.ndjson.gz' is not a shard of this "
        "run; not resumed"
    )
    assert {p: p.read_bytes() for p in _files(tmp_path) if p.name != ".lock"} == before


async def test_a_symlinked_run_directory_is_not_resumed(tmp_path: Path) -> None:
    """A run directory that is a symbolic link (to anywhere) is refused, and nothing is written."""
    run_dir = await _unfinished(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(run_dir, elsewhere)
    shutil.rmtree(run_dir)
    link = run_dir.parent / "20991231T000000Z"
    link.symlink_to(elsewhere, target_is_directory=True)
    # The lock file records who last held it (and when): taking the lock rewrites it.
    before = {p: p.read_bytes() for p in _files(tmp_path) if p.name != ".lock"}
    with pytest.raises(OutputError) as info:
        await _resume(tmp_path / "out")
    assert str(info.value) == f"{link} is a symbolic link, not a run directory; not resumed"
    assert {p: p.read_bytes() for p in _files(tmp_path) if p.name != ".lock"} == before
