"""The simulator over TLS: `simulate --tls-cert --tls-key` prints an https URL and serves on it."""

from __future__ import annotations

import asyncio
import re
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.harness import NOBB, basic_auth
from tests.tlstools import TlsFiles

LISTENING = re.compile(r"listening on (https://127\.0\.0\.1:([0-9]{1,5}))\n")


async def test_simulate_with_tls_flags_prints_an_https_url_and_serves(tmp_path: Path) -> None:
    """One line, `listening on https://127.0.0.1:PORT`; a request verified by the CA succeeds."""
    tls = TlsFiles.make(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harvester", "simulate", "--port", "0", "--nobb-items", "50",
        "--dbk-products", "10", "--tls-cert", str(tls.cert_pem), "--tls-key", str(tls.key_pem),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        m = LISTENING.fullmatch(line)
        assert m, line
        context = ssl.create_default_context(cafile=str(tls.ca_pem))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            async with http.get(m.group(1) + NOBB, params={"pageSize": "100"},
                                headers=basic_auth(SimSettings())) as r:  # fmt: skip
                assert r.status == 200 and r.headers["x-totalHits"] == "50"
                assert r.connection is not None
                assert r.connection.transport is not None
                assert r.connection.transport.get_extra_info("ssl_object") is not None
        proc.send_signal(signal.SIGTERM)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (proc.returncode, rest, err) == (0, b"", b"")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-cert", "CERT"], "error: simulate: --tls-cert and --tls-key go together\n"),
        (["--tls-cert", "MISSING", "--tls-key", "KEY"], "error: simulate: cannot load the TLS "
         "certificate MISSING / key KEY: No such file or directory\n"),
    ],
)  # fmt: skip
def test_bad_tls_flags_exit_2(tmp_path: Path, flags: list[str], message: str) -> None:
    """A lone --tls-cert, or a file that cannot be loaded: one error line, exit 2."""
    tls = TlsFiles.make(tmp_path)
    paths = {"CERT": str(tls.cert_pem), "KEY": str(tls.key_pem),
             "MISSING": str(tmp_path / "missing.pem")}  # fmt: skip
    argv = [paths.get(f, f) for f in flags]
    done = subprocess.run([sys.executable, "-m", "harvester", "simulate", "--port", "0", *argv],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    want = message
    for name, value in paths.items():
        want = want.replace(f" {name} ", f" {value} ").replace(f" {name}:", f" {value}:")
    assert (done.returncode, done.stdout, done.stderr) == (2, "", want)


async def test_simulator_class_takes_cert_paths(tmp_path: Path) -> None:
    """Simulator(tls_cert=, tls_key=) serves https; its url says so."""
    tls = TlsFiles.make(tmp_path)
    async with Simulator(SimSettings(nobb_items=5), tls_cert=tls.cert_pem,
                         tls_key=tls.key_pem) as sim:  # fmt: skip
        assert sim.url == f"https://127.0.0.1:{sim.port}"
        context = ssl.create_default_context(cafile=str(tls.ca_pem))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
            async with http.get(sim.url + NOBB, headers=basic_auth(sim.settings)) as r:
                assert r.status == 200
