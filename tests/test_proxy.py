"""Through a real proxy (proxy.py, a child process): CONNECT tunnels, NO_PROXY, the proxy key,
credentials that never reach a file or a log, and a proxy that cannot be reached."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from harvester.proxies import ProxyUrl
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.expected import expected_dbk, written_dbk
from tests.harness import cli, dump_nobb, run_dbk
from tests.tlstools import ProxyServer, TlsFiles

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
              "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")  # fmt: skip
MARKER = "px-MARKER-789"
NEEDLES = (
    MARKER.encode(),
    base64.b64encode(f"proxyuser:{MARKER}".encode()),
    base64.b64encode(f"proxyuser:{MARKER}-wrong".encode()),
)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    """One proxy.py process for the module's tests (each looks for its own simulator's port)."""
    with ProxyServer(tmp_path_factory.mktemp("proxy")) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or trust-store variable from the machine running the tests."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


def _dead_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_both_sources_tunnel_through_https_proxy(
    tls: TlsFiles, proxy: ProxyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY: NOBB and DBK dump exactly, and the proxy logged CONNECTs to the simulator."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    settings = SimSettings(nobb_items=1500, dbk_products=800, dbk_max_products=200, rate_limit=0,
                           seed=31)  # fmt: skip
    async with Simulator(settings, ssl_context=tls.server_context()) as sim:
        nobb = await dump_nobb(sim, tmp_path, ca_file=tls.ca_pem)
        dbk = await run_dbk(sim, tmp_path, ca_file=tls.ca_pem)
        books = sim.ctx.books
    assert nobb.manifest.complete and nobb.manifest.records == 1500
    assert written_dbk(dbk) == expected_dbk(books, range(books.size))
    opened = 0
    for result in (nobb, dbk):
        transport = result.manifest.transport
        assert transport["proxy"] == proxy.url and transport["scheme"] == "https"
        opened += int(str(transport["connections"]))
    # Every connection the two runs opened, and each one's certificate check, went through it.
    lines = proxy.connects(port=sim.port, at_least=opened + 2)
    assert len(lines) >= opened + 2, proxy.log()[-3000:]


async def test_no_proxy_bypasses_the_environment_proxy(
    tls: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_PROXY naming the simulator's host and port: the (dead) HTTPS_PROXY is never used."""
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_dead_port()}")
    async with Simulator(SimSettings(nobb_items=600, rate_limit=0, seed=32),
                         ssl_context=tls.server_context()) as sim:  # fmt: skip
        monkeypatch.setenv("no_proxy", f"example.com, 127.0.0.1:{sim.port}")
        result = await dump_nobb(sim, tmp_path, ca_file=tls.ca_pem, retries=1)
    assert result.manifest.complete and result.manifest.records == 600
    assert result.manifest.transport["proxy"] is None


async def test_proxy_key_wins_over_the_environment(
    tls: TlsFiles, proxy: ProxyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nobb.proxy is used although HTTPS_PROXY names a dead one and NO_PROXY says bypass."""
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_dead_port()}")
    monkeypatch.setenv("NO_PROXY", "*")
    key = ProxyUrl.parse(proxy.url, key="nobb.proxy")
    async with Simulator(SimSettings(nobb_items=600, rate_limit=0, seed=33),
                         ssl_context=tls.server_context()) as sim:  # fmt: skip
        result = await dump_nobb(sim, tmp_path, ca_file=tls.ca_pem, proxy=key, retries=1)
    assert result.manifest.complete and result.manifest.records == 600
    assert result.manifest.transport["proxy"] == proxy.url
    assert len(proxy.connects(port=sim.port)) >= 1


async def test_plain_http_to_loopback_goes_through_http_proxy(
    proxy: ProxyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY with an http:// loopback base URL: the proxy forwards the requests."""
    monkeypatch.setenv("http_proxy", proxy.url)
    async with Simulator(SimSettings(nobb_items=400, rate_limit=0, seed=34)) as sim:
        result = await dump_nobb(sim, tmp_path, retries=1)
        pages = sim.stats["nobb_pages"]
    assert result.manifest.complete and result.manifest.records == 400
    assert result.manifest.transport == {
        "connections": result.manifest.transport["connections"], "scheme": "http",
        "proxy": proxy.url,
    }  # fmt: skip
    # proxy.py writes one access line per client connection (its last request), as it closes.
    opened = int(str(result.manifest.transport["connections"]))
    lines = proxy.lines(rf" - GET 127\.0\.0\.1:{sim.port}/api/v2/items\?", at_least=opened)
    assert len(lines) >= opened and pages > opened, proxy.log()[-3000:]


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _config(path: Path, sim: Simulator, out: Path, extra: str) -> Path:
    api = (f'base_url = "{sim.url}"\nusername = "harvester"\npassword = "harvester"\n'
           f'rate_limit = "0"\nretries = 2\n{extra}')  # fmt: skip
    path.write_text(f'[output]\ndir = "{out}"\nprometheus_file = "{out.parent / "h.prom"}"\n'
                    f"[nobb]\n{api}page_size = 100\n"
                    f"[dbk]\n{api}workers = 0\nmax_products_per_response = 200\n")  # fmt: skip
    return path


async def test_proxy_password_is_absent_from_every_file_and_log(
    tls: TlsFiles, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Proxy Basic auth from the key, then from HTTPS_PROXY, then refused: no trace of it."""
    work = tmp_path / "run"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("PROXY_PASSWORD", MARKER)
    out, summary = work / "out", work / "summary.json"
    settings = SimSettings(nobb_items=500, dbk_products=400, dbk_max_products=200, rate_limit=0,
                           seed=35)  # fmt: skip
    with ProxyServer(tmp_path_factory.mktemp("authproxy"), basic_auth=f"proxyuser:{MARKER}") as px:
        async with Simulator(settings, ssl_context=tls.server_context()) as sim:
            keyed = f'ca_file = "{tls.ca_pem}"\nproxy = "http://proxyuser:${{PROXY_PASSWORD}}@127.0.0.1:{px.port}"\n'
            argv = ["dump", "all", "--summary-json", str(summary), "-v", "--log-format", "json"]
            cfg = _config(work / "keyed.toml", sim, out, keyed)
            before = _files(tmp_path)
            by_key = await cli(*argv, "--config", str(cfg))
            monkeypatch.setenv("HTTPS_PROXY", f"http://proxyuser:{MARKER}@127.0.0.1:{px.port}")
            cfg = _config(work / "env.toml", sim, out, f'ca_file = "{tls.ca_pem}"\n')
            by_env = await cli(*argv, "--config", str(cfg))
            monkeypatch.setenv(
                "HTTPS_PROXY", f"http://proxyuser:{MARKER}-wrong@127.0.0.1:{px.port}"
            )
            refused = await cli("dump", "nobb", "--config", str(cfg))
            written = _files(tmp_path) - before
        tunnels = px.connects(port=sim.port, at_least=2)
    assert by_key[0] == 0 and by_env[0] == 0, (by_key[2][-2000:], by_env[2][-2000:])
    assert len(tunnels) >= 2
    for manifest in out.glob("*/*/manifest.json"):
        assert (
            orjson.loads(manifest.read_bytes())["transport"]["proxy"]
            == f"http://127.0.0.1:{px.port}"
        )
    assert refused[0] == 1
    assert (
        f"proxy http://127.0.0.1:{px.port} (from HTTPS_PROXY) refused the tunnel: HTTP 407"
        in refused[2]
    )
    assert any(p.name == "manifest.json" for p in written)
    for path in written:
        body = path.read_bytes()
        assert not [n for n in NEEDLES if n in body], path
    for _, stdout, stderr in (by_key, by_env, refused):
        for text in (stdout, stderr):
            assert not [n for n in NEEDLES if n in text.encode()], text


async def test_unreachable_proxy_is_one_line_and_exit_1(
    tls: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy nothing listens on: retried, then one error line naming it without its password."""
    dead = _dead_port()
    monkeypatch.setenv("HTTPS_PROXY", f"http://proxyuser:{MARKER}@127.0.0.1:{dead}")
    out = tmp_path / "out"
    async with Simulator(SimSettings(nobb_items=300, rate_limit=0, seed=36),
                         ssl_context=tls.server_context()) as sim:  # fmt: skip
        cfg = _config(tmp_path / "c.toml", sim, out, f'ca_file = "{tls.ca_pem}"\n')
        code, stdout, stderr = await cli("dump", "all", "--config", str(cfg))
        served = sim.stats["nobb_requests"] + sim.stats["dbk_requests"]
    named = (
        f"cannot connect to proxy http://127.0.0.1:{dead} (from HTTPS_PROXY): Connection refused"
    )
    errors = [line for line in stderr.splitlines() if line.startswith(("ERROR", "error:"))]
    assert code == 1 and served == 0
    assert len(errors) == 2 and all(named in line for line in errors), stderr
    assert errors[0].startswith("ERROR harvester.nobb: nobb planning failed: " + named)
    assert errors[1] == f"error: {named} [dbk POST /dwapi/users/authenticate]"
    assert all(named in line for line in stderr.splitlines() if "proxy http" in line), stderr
    assert MARKER not in stdout + stderr


async def test_plain_http_through_a_proxy_with_basic_auth(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """http:// to loopback via a password-protected proxy: the credentials ride on each request."""
    px_dir = tmp_path_factory.mktemp("httpauthproxy")
    with ProxyServer(px_dir, basic_auth=f"proxyuser:{MARKER}") as px:
        good = ProxyUrl.parse(f"http://proxyuser:{MARKER}@127.0.0.1:{px.port}", key="nobb.proxy")
        bad = ProxyUrl.parse(f"http://proxyuser:{MARKER}-x@127.0.0.1:{px.port}", key="nobb.proxy")
        async with Simulator(SimSettings(nobb_items=300, rate_limit=0, seed=37)) as sim:
            done = await dump_nobb(sim, tmp_path / "a", proxy=good, retries=1)
            refused = await dump_nobb(sim, tmp_path / "b", proxy=bad, retries=1)
    assert done.manifest.complete and done.manifest.records == 300
    assert not refused.manifest.complete and refused.manifest.records == 0
    assert refused.manifest.partitions["plan"]["error"].startswith(  # type: ignore[index]
        f"proxy http://127.0.0.1:{px.port} (from nobb.proxy) refused the request: HTTP 407"
    )
