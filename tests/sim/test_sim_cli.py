"""The simulator as a process: one stdout line, serves, exits 0 on SIGTERM and SIGINT; its flags."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys

import aiohttp
import orjson
import pytest

from harvester.sim.settings import SimSettings
from tests.harness import NOBB, basic_auth

FLAGS = [
    "--host", "--port", "--seed", "--nobb-items", "--dbk-products", "--rate-limit",
    "--rate-window", "--latency-ms", "--token-ttl", "--dbk-max-products", "--faults",
    "--username", "--password",
]  # fmt: skip
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:([0-9]{1,5}))\n")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_process_prints_one_line_serves_and_exits_0(sig: signal.Signals) -> None:
    """stdout is exactly the listening line; the API answers; the signal ends it with exit 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harvester.sim.cli", "--port", "0",
        "--nobb-items", "100", "--dbk-products", "100",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        m = LISTENING.fullmatch(line)
        assert m, line
        assert 0 < int(m.group(2)) < 65536
        s = SimSettings()
        async with aiohttp.ClientSession() as http:
            q = {"pageSize": "1000"}
            async with http.get(m.group(1) + NOBB, params=q, headers=basic_auth(s)) as r:
                assert r.status == 200
                assert r.headers["x-totalHits"] == "100"
                assert len(orjson.loads(await r.read())) == 100
        proc.send_signal(sig)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert rest == b""
    assert err == b""


def test_harvester_simulate_help_lists_every_flag() -> None:
    """`python -m harvester simulate --help` names every fixed simulate flag and the profiles."""
    done = subprocess.run(
        [sys.executable, "-m", "harvester", "simulate", "--help"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"harvester simulate --help failed outside the simulator: {done.stderr}")
    listed = set(re.findall(r"--[a-z][a-z0-9-]*", done.stdout))
    assert set(FLAGS) <= listed, set(FLAGS) - listed
    assert "{none,flaky,hostile}" in done.stdout


def test_module_help_lists_the_same_flags() -> None:
    """`python -m harvester.sim.cli --help` offers the fixed flags, the extensions and --help."""
    done = subprocess.run(
        [sys.executable, "-m", "harvester.sim.cli", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    # The fixed flags, and the extensions since: the bulk second, --fail-matching, the edge
    # readings, --now, the rate-limit readings --reset-style, --rate-headers, --clock-skew,
    # --rate-sliding, the quotas nobody announces (--rate-hidden, --retry-after,
    # --rate-change-after, --rate-change-to), and TLS.
    extensions = {"--bulk-second", "--no-bulk-second", "--fail-matching", "--dbk-from-exclusive",
                  "--dbk-to-inclusive", "--nobb-from-exclusive", "--nobb-to-exclusive",
                  "--now", "--reset-style", "--rate-headers", "--clock-skew",
                  "--rate-sliding", "--rate-hidden", "--retry-after", "--rate-change-after",
                  "--rate-change-to", "--tls-cert", "--tls-key"}  # fmt: skip
    # The open points' other readings (sim/readings.py), one block.
    readings = {"--nobb-total-hits-first-only", "--nobb-page-clamp", "--nobb-accepted",
                "--nobb-token-from-issue", "--nobb-expired-400", "--dbk-cap-answer",
                "--dbk-empty-200", "--dbk-onix", "--dbk-datestamps", "--dbk-shuffle",
                "--dbk-refresh-refuses", "--nobb-header-style", "--dbk-token-life",
                "--dbk-rotate-key",
                "--dbk-basic-time-only", "--encoding"}  # fmt: skip
    assert set(re.findall(r"--[a-z][a-z0-9-]*", done.stdout)) == {
        *FLAGS,
        "--help",
        *extensions,
        *readings,
    }


def test_bad_flag_value_exits_2() -> None:
    """An out-of-range setting is refused with exit 2 and a message naming it."""
    proc = subprocess.run(
        [sys.executable, "-m", "harvester", "simulate", "--port", "70000"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "port must be 0..65535" in proc.stderr
