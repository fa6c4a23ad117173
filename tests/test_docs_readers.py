"""docs/output.md's DuckDB and pandas examples, run as written against a real dump of each."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from harvester.config import OutputConfig
from harvester.run import RunResult
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.dbk import DbkSource
from harvester.sources.nobb import NobbSource
from tests.harness import dbk_config, harvest, nobb_config

DOC = Path(__file__).parent.parent / "docs" / "output.md"
EXAMPLE_RUN = "20261122T020000Z"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunResult]:
    """One small dump of each source under a fresh OUT (the docs' "out")."""
    return asyncio.run(_dump_both(tmp_path_factory.mktemp("docs") / "out"))


async def _dump_both(out: Path) -> dict[str, RunResult]:
    found = {}
    async with Simulator(SimSettings(nobb_items=1200, dbk_products=400, rate_limit=0)) as sim:
        for source in (NobbSource(nobb_config(sim.url, page_size=500)),
                       DbkSource(dbk_config(sim.url, workers=0))):  # fmt: skip
            output = OutputConfig(shard_max_records=500)
            found[source.name] = await harvest(source, out, output=output, digest="docs")
    return found


def _localize(text: str, runs: dict[str, RunResult]) -> str:
    """The example's paths, pointed at the real runs."""
    for name, result in runs.items():
        for q in "'\"":  # only paths that start a string literal
            text = text.replace(f"{q}out/{name}/{EXAMPLE_RUN}", f"{q}{result.run_dir}")
            text = text.replace(f"{q}out/{name}/", f"{q}{result.run_dir.parent}/")
    return text


def test_every_duckdb_statement_runs_and_counts_right(runs: dict[str, RunResult]) -> None:
    """Each SQL statement of the DuckDB example runs on the dump; counts match the manifests."""
    (sql,) = _blocks("sql")
    con = duckdb.connect()
    statements = [s.strip() for s in _localize(sql, runs).split(";") if s.strip()]
    assert len(statements) >= 5
    results: list[list[tuple[Any, ...]]] = []
    for statement in statements:
        body = "\n".join(ln for ln in statement.splitlines() if not ln.startswith("--"))
        if body.lstrip().startswith("SELECT"):
            results.append(con.sql(body).fetchall())
        else:
            con.execute(body)
    assert results[0] == [(1200, 1200)]
    assert len(results[1]) == 10
    assert len(results[2]) == 400
    latest = con.sql("SELECT count(*), count(DISTINCT nobbNumber) FROM nobb_latest").fetchall()
    assert latest == [(1200, 1200)]


def test_the_pandas_example_reads_the_whole_run(runs: dict[str, RunResult]) -> None:
    """The pandas example reads one shard and then every shard of the run, strings kept."""
    (code,) = [b for b in _blocks("python") if "import pandas" in b]
    scope: dict[str, Any] = {}
    exec(compile(_localize(code, runs), str(DOC), "exec"), scope)
    assert len(scope["one"]) == 500
    df = scope["df"]
    assert len(df) == 1200 and df["nobbNumber"].nunique() == 1200
