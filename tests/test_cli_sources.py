"""`harvester dump|sync [nobb] [dbk] [all]`: any sources, several at once, none meaning all."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from harvester.app import picked_sources
from harvester.cli import build_parser, main, parse_args
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings

SETTINGS = SimSettings(nobb_items=400, dbk_products=300, dbk_max_products=200, rate_limit=0)


def _config(tmp: Path, url: str, *, sections: tuple[str, ...] = ("nobb", "dbk")) -> Path:
    text = f'[output]\ndir = "{tmp / "out"}"\n'
    for name in sections:
        text += f'[{name}]\nbase_url = "{url}"\nusername = "harvester"\npassword = "harvester"\n'
        text += 'rate_limit = "0"\n'
        if name == "dbk":  # converted in-process: no worker pool to start for each run
            text += "max_products_per_response = 200\nworkers = 0\n"
    cfg = tmp / "c.toml"
    cfg.write_text(text)
    return cfg


async def _run(tmp: Path, *argv: str) -> tuple[int, list[tuple[str, str, int]]]:
    """Run the CLI off this loop; the exit code and (source, mode, records) of each source run."""
    summary = tmp / "summary.json"
    summary.unlink(missing_ok=True)
    code = await asyncio.to_thread(
        main, [*argv, "--progress", "never", "-q", "--summary-json", str(summary)]
    )
    if not summary.exists():
        return code, []
    body = orjson.loads(summary.read_bytes())
    return code, [(s["source"], s["mode"], s["records"]) for s in body["sources"]]


@pytest.mark.parametrize(
    ("argv", "source"),
    [
        (["dump", "--config", "c"], []),
        (["dump", "--resume", "--config", "c"], []),
        (["dump", "nobb", "dbk", "--config", "c"], ["nobb", "dbk"]),
        (["sync", "dbk", "nobb", "--config", "c"], ["dbk", "nobb"]),
        (["dump", "--config", "c", "nobb", "dbk"], ["nobb", "dbk"]),
        (["dump", "nobb", "--resume", "--config", "c", "dbk"], ["nobb", "dbk"]),
        (["sync", "all", "--config", "c"], ["all"]),
    ],
)
def test_parser_takes_every_form(argv: list[str], source: list[str]) -> None:
    """Zero, one or several sources, before or after the options, parse to that list."""
    assert parse_args(build_parser(), argv).source == source


def test_picked_sources_order_and_all() -> None:
    """Named sources come once each in the fixed order; none or `all` mean every configured one."""
    assert picked_sources(["dbk", "nobb", "dbk"]) == ("nobb", "dbk")
    assert picked_sources(["dbk"]) == ("dbk",)
    assert picked_sources([]) is None
    assert picked_sources(["nobb", "all"]) is None


@pytest.mark.parametrize(
    "argv",
    [["dump", "nosuch", "--config", "c"], ["dump", "nobb", "--config", "c", "nosuch"]],
)
def test_unknown_source_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown source, before or after the options, exits 2 naming it and the choices."""
    assert main(argv) == 2
    assert "invalid choice: 'nosuch' (choose from 'nobb', 'dbk', 'all')" in capsys.readouterr().err


def test_help_shows_the_forms(capsys: pytest.CaptureFixture[str]) -> None:
    """`dump --help` and `sync --help` show `[nobb] [dbk] [all]` and what no source means."""
    for command in ("dump", "sync"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert f"usage: harvester {command} [nobb] [dbk] [all] --config FILE" in out
        assert "none means every source configured" in out


async def test_each_form_runs_the_sources_it_names(tmp_path: Path) -> None:
    """Two sources at once, one, none (all configured), `all`; sync and --resume the same."""
    async with Simulator(SETTINGS) as sim:
        cfg = str(_config(tmp_path, sim.url))
        both = [("nobb", "dump", 400), ("dbk", "dump", 300)]
        assert await _run(tmp_path, "dump", "nobb", "dbk", "--config", cfg) == (0, both)
        assert await _run(tmp_path, "dump", "dbk", "--config", cfg) == (0, [("dbk", "dump", 300)])
        assert await _run(tmp_path, "dump", "--config", cfg) == (0, both)
        assert await _run(tmp_path, "dump", "all", "--config", cfg) == (0, both)
        # Nothing unfinished: --resume with no source starts a new dump of every source.
        assert await _run(tmp_path, "dump", "--resume", "--config", cfg) == (0, both)
        code, runs = await _run(tmp_path, "sync", "dbk", "nobb", "--config", cfg)
        assert (code, [(s, m) for s, m, _ in runs]) == (0, [("nobb", "sync"), ("dbk", "sync")])
        code, runs = await _run(tmp_path, "sync", "--resume", "--config", cfg)
        assert (code, [(s, m) for s, m, _ in runs]) == (0, [("nobb", "sync"), ("dbk", "sync")])
    assert len(list((tmp_path / "out" / "nobb").glob("2*"))) == 6
    assert len(list((tmp_path / "out" / "dbk").glob("2*"))) == 7


async def test_no_source_means_the_configured_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With only [nobb] configured, no source runs NOBB; naming dbk exits 2 naming the section."""
    async with Simulator(SETTINGS) as sim:
        cfg = str(_config(tmp_path, sim.url, sections=("nobb",)))
        assert await _run(tmp_path, "dump", "--config", cfg) == (0, [("nobb", "dump", 400)])
        capsys.readouterr()
        assert await _run(tmp_path, "dump", "nobb", "dbk", "--config", cfg) == (2, [])
        assert f"error: no [dbk] section in the config {cfg}" in capsys.readouterr().err
