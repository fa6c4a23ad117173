"""Benchmarks: a quick smoke run end to end, the sweep's pure parts, and `harvester bench`."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import orjson
import pytest

from benchmarks.suite import Row, render_table
from benchmarks.sweep import Setting, best, scaled, snippet
from harvester.cli import build_parser
from harvester.config_file import parse_config

ROOT = Path(__file__).resolve().parent.parent
ENV = {"NOBB_USERNAME": "u", "NOBB_PASSWORD": "p", "DBK_USERNAME": "u", "DBK_PASSWORD": "p"}


@pytest.mark.timeout(30)
def test_quick_nobb_prints_one_table_and_writes_the_json(tmp_path: Path) -> None:
    """`python -m benchmarks --quick --only nobb`: one table and a JSON file with the keys."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "nobb",
         "--results-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=28, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    header = [line for line in proc.stdout.splitlines() if line.startswith("scenario ")]
    assert len(header) == 1
    assert header[0].split()[:5] == ["scenario", "case", "metric", "harvester", "baseline"]
    (path,) = tmp_path.glob("*.json")
    assert re.fullmatch(r"\d{8}T\d{6}Z\.json", path.name)
    assert f"results: {path}" in proc.stdout
    data = orjson.loads(path.read_bytes())
    assert {"started", "finished", "argv", "args", "machine", "rows", "extra"} <= data.keys()
    assert {"cpu", "cores", "python"} <= data["machine"].keys()
    assert data["args"]["quick"] is True
    keys = {"scenario", "case", "metric", "harvester", "baseline", "baseline_name", "ratio",
            "rss_harvester_mb", "rss_baseline_mb", "note", "runs"}  # fmt: skip
    assert data["rows"] and all(keys <= row.keys() for row in data["rows"])
    assert {row["metric"] for row in data["rows"]} == {"items/s", "MB/s"}
    assert all(row["scenario"] == "nobb" and row["harvester"] > 0 and row["baseline"] > 0
               for row in data["rows"])  # fmt: skip


def test_unknown_scenario_is_a_usage_error() -> None:
    """`--only` with a name that is no scenario exits 2 and lists the known ones."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nobb,nope"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "nope" in proc.stderr and "latency" in proc.stderr


def test_ratio_is_oriented_so_above_one_means_harvester_is_better() -> None:
    """Rates divide harvester by baseline, seconds the other way, 429 counts get no ratio."""

    def row(metric: str, h: float, b: float) -> Row:
        return Row(scenario="s", case="c", metric=metric, harvester=h, baseline=b,
                   baseline_name="b")  # fmt: skip

    assert row("items/s", 200, 100).ratio == 2
    assert row("s (wall)", 5, 10).ratio == 2
    assert row("utilization", 0.99, 1.0).ratio == pytest.approx(0.99)
    assert row("429s", 0, 19).ratio is None
    skipped = Row(scenario="peers", case="c", metric="s (wall)", harvester=None, baseline=None,
                  baseline_name="dlt", note="skipped: pip install -e '.[bench]'")  # fmt: skip
    table = render_table([row("items/s", 200, 100), skipped])
    assert "2.00x" in table and "skipped: pip install -e '.[bench]'" in table


def _setting(source: str, conc: int, rate: float, throttled: int = 0) -> Setting:
    knobs = {"concurrency": conc, "page_size": 10_000} if source == "nobb" else {
        "concurrency": conc, "max_products_per_response": 2000}  # fmt: skip
    return Setting(source=source, knobs=knobs, items=int(rate * 10), secs=10.0,
                   requests=10, throttled=throttled)  # fmt: skip


def test_sweep_recommends_the_fastest_setting_without_429s() -> None:
    """A faster setting that drew 429s loses; within 5 % the lower concurrency wins."""
    fast_but_429 = _setting("nobb", 8, 30_000, throttled=3)
    assert best([fast_but_429, _setting("nobb", 4, 20_000), _setting("nobb", 2, 19_500)]
                ).knobs["concurrency"] == 2  # fmt: skip
    assert best([_setting("nobb", 1, 10_000), _setting("nobb", 4, 20_000)]
                ).knobs["concurrency"] == 4  # fmt: skip
    assert best([fast_but_429, _setting("nobb", 2, 1_000, throttled=9)]) is fast_but_429


def test_sweep_scales_long_windows_to_the_same_sustained_rate() -> None:
    """600/60s runs as 50/5s; a window of 5 s or less is kept as it is."""
    assert scaled(600, 60) == (50, 5.0)
    assert scaled(120, 60) == (10, 5.0)
    assert scaled(10, 1) == (10, 1.0)
    assert scaled(1, 60) == (1, 5.0)


def test_sweep_snippet_is_a_valid_config() -> None:
    """The printed [nobb]/[dbk] snippet loads as a config with the recommended values."""
    text = snippet("600/60s", _setting("nobb", 4, 1), _setting("dbk", 2, 1), "measured")
    cfg = parse_config(tomllib.loads(text), ENV)
    assert cfg.nobb is not None and cfg.dbk is not None
    assert (cfg.nobb.concurrency, cfg.nobb.page_size, cfg.nobb.two_ended) == (4, 10_000, True)
    assert cfg.nobb.rate_limit == cfg.dbk.rate_limit == "600/60s"
    assert (cfg.dbk.concurrency, cfg.dbk.max_products_per_response) == (2, 2000)
    one = parse_config(tomllib.loads(snippet("10/s", _setting("nobb", 1, 1), None, "x")), ENV)
    assert one.nobb is not None and not one.nobb.two_ended and one.dbk is None


def test_harvester_bench_parses_the_forwarded_flags_without_importing_benchmarks() -> None:
    """`harvester bench` takes the suite's and the sweep's flags; the CLI never imports them."""
    args = build_parser().parse_args(
        ["bench", "--sweep", "--rate-limit", "600/60s", "--latency-ms", "80", "--quick"]
    )
    assert (args.sweep, args.rate_limit, args.latency_ms, args.quick) == (True, "600/60s", 80, True)
    args = build_parser().parse_args(["bench", "--only", "nobb,peers", "--rounds", "3"])
    assert (args.only, args.rounds, args.sweep) == ("nobb,peers", 3, False)
    code = ("import sys, harvester.cli as c; c.build_parser(); "
            "print(any(m.split('.')[0] == 'benchmarks' for m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=30).stdout  # fmt: skip
    assert out.strip() == "False"


def test_tuning_doc_commands_parse() -> None:
    """Every `harvester bench ...` line in docs/tuning.md is accepted by the CLI parser."""
    text = (ROOT / "docs" / "tuning.md").read_text()
    lines = [
        line.strip() for line in text.splitlines() if line.strip().startswith("harvester bench")
    ]
    assert lines
    for line in lines:
        args = build_parser().parse_args(line.split()[1:])
        assert args.command == "bench" and args.sweep


def test_peers_rows_say_skipped_without_the_bench_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without dlt or requests the peers rows name the extra to install and measure nothing."""
    import benchmarks.peers as peers

    monkeypatch.setattr(peers, "_installed", lambda: ["dlt"])
    rows, extra = peers.peers(quick=True, rounds=1)
    assert extra == {"missing": ["dlt"]}
    assert [r.case for r in rows] == [
        "full dump, 5k items vs requests",
        "full dump, 5k items vs dlt",
    ]
    assert all(r.note == "skipped: pip install -e '.[bench]'" for r in rows)
    assert all(r.harvester is None and r.baseline is None and r.ratio is None for r in rows)


def test_harvester_bench_outside_a_checkout_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Installed without the repository around it, `harvester bench` exits 2 and says why."""
    import harvester.cli as cli

    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "harvester" / "cli.py"))
    assert cli.main(["bench", "--quick"]) == 2
    assert "source checkout" in capsys.readouterr().err


def _wrapped(setup: str, code: str, report: str) -> list[str]:
    """What a parent process prints about its child ``code`` run through ``own_peak.wrap``:
    the parent runs ``setup`` first, then prints ``report`` (of ``err``, ``status``, ``usage``)."""
    parent = (
        f"import os, subprocess, sys\nfrom benchmarks.own_peak import *\n{setup}\n"
        f"p = subprocess.Popen(wrap([sys.executable, '-c', {code!r}]), stderr=subprocess.PIPE)\n"
        "err = p.stderr.read().decode()\n"
        "_, status, usage = os.wait4(p.pid, 0)\n"
        f"print({report})\n"
    )
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True,
                         check=True, cwd=ROOT)  # fmt: skip
    return out.stdout.split()


def test_a_wrapped_child_reports_its_own_peak_not_its_parents() -> None:
    """A child of a 300 MB process that holds 40 MB reports ~40-80 MB, where wait4 says 300+."""
    code, own, inherited = _wrapped(
        "held = bytearray(300 << 20); held[::4096] = b'x' * len(held[::4096])",
        'import sys; b = bytearray(40 << 20); b[::4096] = b"x" * len(b[::4096]); sys.exit(3)',
        "os.waitstatus_to_exitcode(status), peak_mb(err), usage.ru_maxrss / 1024",
    )
    assert code == "3"  # the wrapped command's exit status passes through
    assert 40 <= float(own) < 80
    assert float(inherited) >= 300


def test_a_wrapped_child_reports_the_cpu_of_the_processes_it_waited_for() -> None:
    """The children-cpu line counts a waited-for grandchild's CPU, within what wait4 counts."""
    burn = "x = 0\nfor i in range(5_000_000): x += i"
    kids, whole = _wrapped(
        "",
        f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])",
        "children_cpu(err), usage.ru_utime + usage.ru_stime",
    )
    assert 0.05 <= float(kids) <= float(whole)


@pytest.mark.timeout(60)
def test_the_cpu_floors_count_every_item_of_a_walk_across_pages() -> None:
    """The contract and checked floors each count exactly the 25,000 items of three pages."""
    from benchmarks.scen_cpu import _floor
    from benchmarks.suite import simulator

    with simulator("--nobb-items", "25000") as url:
        counts = [_floor(url, mode)["n"] for mode in ("--floor", "--contract", "--checked")]
    assert counts == [25_000, 25_000, 25_000]
