"""The harvester command: help, exit codes, and a demo that does not pretend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harvester.cli import main
from harvester.output import verify_run


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """`harvester --help` lists demo, dump, sync and simulate."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "dump", "sync", "simulate"):
        assert f"    {command} " in out


def test_simulate_help_lists_every_fixed_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """`harvester simulate --help` shows every flag of the fixed simulate contract."""
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--host", "--port", "--seed", "--nobb-items", "--dbk-products", "--rate-limit",
        "--rate-window", "--latency-ms", "--token-ttl", "--dbk-max-products", "--faults",
        "--username", "--password",
    ):  # fmt: skip
        assert flag in out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown source is a usage error: exit 2 and a one-line message on stderr."""
    assert main(["dump", "nosuch", "--config", "x.toml"]) == 2
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err


def test_missing_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config path that does not exist stops with exit 2 naming it."""
    assert main(["dump", "nobb", "--config", str(tmp_path / "none.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_dump_dbk_without_its_section_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dump dbk` with a config lacking [dbk] stops with exit 2 naming the section."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('[nobb]\nusername = "u"\npassword = "p"\n')
    assert main(["dump", "dbk", "--config", str(cfg)]) == 2
    assert "no [dbk] section" in capsys.readouterr().err


def test_demo_dumps_both_sources_from_the_embedded_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """demo dumps every simulated NOBB item and DBK product exactly once and exits 0."""
    out = tmp_path / "demo-out"
    code = main(["demo", "--out", str(out), "--nobb-items", "3000", "--dbk-products", "3300"])
    captured = capsys.readouterr()
    assert code == 0
    assert "nobb: 3,000 of 3,000 items written exactly once (all)" in captured.out
    assert "dbk: 3,300 of 3,300 products written exactly once (all)" in captured.out
    (run,) = (out / "nobb").glob("2*")
    assert verify_run(run)["records"] == 3000
    (run,) = (out / "dbk").glob("2*")
    assert verify_run(run)["records"] == 3300


def test_a_worker_imports_no_event_loop_or_http_stack() -> None:
    """A DBK worker imports the CLI module (through the harvester script) and the converter only."""
    code = (
        "import sys, harvester.cli, harvester.parse.onix_worker, harvester.parse.onix\n"
        "print(sorted(m for m in ('asyncio', 'ssl', 'aiohttp', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
