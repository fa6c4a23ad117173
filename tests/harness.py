"""What the tests share: one run of a source, configs for the simulator, the CLI, auth headers.

A test harvests through ``harvest()`` (what ``harvester dump|sync`` runs for one source, without
the CLI), builds its config with ``nobb_config``/``dbk_config`` (the simulator's account, no rate
limit, then the test's own keys), runs the CLI in a thread with ``cli()`` when the simulator is on
this loop, starts a simulator process with ``simulate()`` when the harvester runs as one, and
speaks to the simulator directly with ``basic_auth``/``bearer`` headers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

from harvester.cli import main
from harvester.config import DbkConfig, NobbConfig, OutputConfig, Secret
from harvester.engine.clock import Clock
from harvester.progress import Progress
from harvester.run import RunResult, run_source
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from harvester.sources.base import Mode, Source
from harvester.sources.dbk import DbkSource
from harvester.sources.nobb import NobbSource
from tests.clocks import clocks_at

__all__ = [
    "DBK_AUTH",
    "DBK_EXPORT",
    "DBK_REFRESH",
    "NOBB",
    "ONIX_NS",
    "basic_auth",
    "bearer",
    "cli",
    "dbk_config",
    "dump_nobb",
    "harvest",
    "nobb_config",
    "run_dbk",
    "sim_dbk_config",
    "sim_nobb_config",
    "simulate",
]

NOBB = "/api/v2/items"
DBK_AUTH = "/dwapi/users/authenticate"
DBK_REFRESH = "/dwapi/users/authenticate/refresh"
DBK_EXPORT = "/onix/document/export/v3.1"
ONIX_NS = "http://ns.editeur.org/onix/3.1/reference"

#: The simulator's account (``SimSettings``' default username and password) and no rate limit.
_SIM_ACCOUNT: dict[str, Any] = {
    "username": Secret("harvester"),
    "password": Secret("harvester"),
    "rate_limit": "0",
}


def nobb_config(url: str, **kw: Any) -> NobbConfig:
    """A NOBB config for the simulator at ``url``: its account, no rate limit, then ``kw`` (which
    may name another ``base_url``)."""
    return NobbConfig(**{"base_url": url, **_SIM_ACCOUNT, **kw})


def dbk_config(url: str, **kw: Any) -> DbkConfig:
    """A DBK config for the simulator at ``url``: its account, no rate limit, then ``kw`` (which
    may name another ``base_url``)."""
    return DbkConfig(**{"base_url": url, **_SIM_ACCOUNT, **kw})


def sim_nobb_config(sim: Simulator, **kw: Any) -> NobbConfig:
    """The NOBB config most tests run against ``sim``: 500 a page, 4 walks, 6 retries, then
    ``kw``."""
    return nobb_config(sim.url, **{"page_size": 500, "concurrency": 4, "retries": 6, **kw})


def sim_dbk_config(sim: Simulator, **kw: Any) -> DbkConfig:
    """The DBK config most tests run against ``sim``: 4 requests at once, 6 retries, converting
    inline, the simulator's product cap, then ``kw``."""
    cap = sim.settings.dbk_max_products
    base = {"concurrency": 4, "retries": 6, "workers": 0, "max_products_per_response": cap}
    return dbk_config(sim.url, **{**base, **kw})


async def harvest(
    source: Source,
    out: Path,
    *,
    mode: Mode = "dump",
    output: OutputConfig | None = None,
    resume: bool = False,
    clock: Clock | None = None,
    digest: str = "test",
    progress: Progress | None = None,
) -> RunResult:
    """One run of ``source`` into ``out/<source>/<run_id>``, as the CLI runs it, with no live
    display (``progress``: the counters to read afterwards); ``clock`` times the run itself (its
    start, hence its run id)."""
    return await run_source(
        source,
        mode=mode,
        output=output or OutputConfig(),
        out_dir=out,
        config_digest=digest,
        progress=progress or Progress(source=source.name),
        resume=resume,
        clock=clock,
    )


async def dump_nobb(
    sim: Simulator, out: Path, *, clock: Clock | None = None, **kw: Any
) -> RunResult:
    """A NOBB dump of ``sim`` (``sim_nobb_config``) by the client on ``clock``: by default one
    reading the simulator's "now"; shards close at 1500 records."""
    clock = clock or clocks_at(sim.settings.now)[1]
    source = NobbSource(sim_nobb_config(sim, **kw), clock=clock)
    return await harvest(source, out, output=OutputConfig(shard_max_records=1500), clock=clock)


async def run_dbk(
    sim: Simulator,
    out: Path,
    mode: Mode = "dump",
    clock: Clock | None = None,
    run_clock: Clock | None = None,
    **kw: Any,
) -> RunResult:
    """A run of the DBK source (``sim_dbk_config``) on ``clock``; ``run_clock`` times the run
    itself (its start); shards close at 700 records."""
    source = DbkSource(sim_dbk_config(sim, **kw), clock=clock)
    output = OutputConfig(shard_max_records=700)
    return await harvest(source, out, mode=mode, output=output, clock=run_clock)


async def cli(*argv: str, clock: Clock | None = None) -> tuple[int, str, str]:
    """The CLI in a thread (it owns its loop; the simulator runs on this one), no progress line:
    exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = await asyncio.to_thread(main, [*argv, "--progress", "never"], clock=clock)
    return code, out.getvalue(), err.getvalue()


def simulate(*flags: str, port: int | str = 0) -> tuple[subprocess.Popen[str], str]:
    """A ``harvester simulate`` child process with ``flags`` on ``port`` (0: a free one), and the
    URL it prints once it listens; the caller stops it."""
    cmd = [sys.executable, "-m", "harvester", "simulate", "--port", str(port), *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()[-1]


def basic_auth(settings: SimSettings, password: str | None = None) -> dict[str, str]:
    """An HTTP Basic Authorization header for the settings' account (or another password)."""
    secret = settings.password if password is None else password
    raw = f"{settings.username}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def bearer(token: str) -> dict[str, str]:
    """A Bearer Authorization header."""
    return {"Authorization": f"Bearer {token}"}
