"""HTTPS over real loopback TLS with a throwaway CA: ca_file, SSL_CERT_FILE, and the clear error."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import warnings
from pathlib import Path

import aiohttp
import orjson
import pytest
import trustme

from harvester.config_file import parse_config
from harvester.engine.http import HttpClient, HttpSettings, Request
from harvester.engine.tls import client_context
from harvester.errors import CertificateError, ConfigError, ConnectError
from harvester.output import read_lines, verify_run
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.expected import expected_dbk, written_dbk
from tests.harness import basic_auth, cli, dump_nobb, run_dbk
from tests.tlstools import TlsFiles

NO_PROXY_ENV = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def _no_ambient_proxy_or_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests connect directly and to the system store unless they say otherwise."""
    for name in (*NO_PROXY_ENV, "SSL_CERT_FILE", "SSL_CERT_DIR", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


async def _served_nobb(sim: Simulator, ca: Path) -> dict[int, bytes]:
    """Every NOBB item's bytes exactly as the simulator serves them, over its TLS."""
    context = ssl.create_default_context(cafile=str(ca))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        async with http.get(sim.url + "/api/v2/items", params={"pageSize": "10000"},
                            headers=basic_auth(sim.settings)) as r:  # fmt: skip
            return {i["nobbNumber"]: orjson.dumps(i) for i in orjson.loads(await r.read())}


async def test_nobb_dumps_exactly_over_tls_with_ca_file(tls: TlsFiles, tmp_path: Path) -> None:
    """NOBB over HTTPS with ca_file: every item once as served; connections reused across pages."""
    settings = SimSettings(nobb_items=5000, rate_limit=0, seed=21)
    async with Simulator(settings, ssl_context=tls.server_context()) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        result = await dump_nobb(sim, tmp_path, ca_file=tls.ca_pem, page_size=200)
        served = await _served_nobb(sim, tls.ca_pem)
        requests = sim.stats["nobb_requests"]
    assert result.exit_code == 0
    verify_run(result.run_dir)
    lines = list(read_lines(result.run_dir))
    assert dict(zip([orjson.loads(x)["nobbNumber"] for x in lines], lines, strict=True)) == served
    transport = result.manifest.transport
    assert transport == {
        "connections": transport["connections"], "scheme": "https", "proxy": None,
        "accept_encoding": "identity",
        "accept_encoding_rule": "auto: loopback, no proxy (the wire is free, inflating is not)",
    }  # fmt: skip
    # Keep-alive: one connection per walk in flight (4), for dozens of pages; plus, for each of
    # the 2 partitions walked from both ends, one that may be dropped where its ends meet inside
    # a page (the rest of that body is not read, so aiohttp closes it rather than reuse it).
    assert 1 <= int(str(transport["connections"])) <= 4 + 2 < requests // 4


async def test_dbk_dumps_exactly_over_tls_with_ca_file(tls: TlsFiles, tmp_path: Path) -> None:
    """DBK over HTTPS with ca_file: every product once, as converted from the served ONIX."""
    settings = SimSettings(dbk_products=1500, dbk_max_products=200, rate_limit=0, seed=22)
    async with Simulator(settings, ssl_context=tls.server_context()) as sim:
        result = await run_dbk(sim, tmp_path, ca_file=tls.ca_pem)
        books = sim.ctx.books
        requests = sim.stats["dbk_requests"]
    assert result.exit_code == 0 and result.manifest.complete
    assert written_dbk(result) == expected_dbk(books, range(books.size))
    connections = int(str(result.manifest.transport["connections"]))
    assert result.manifest.transport["scheme"] == "https"
    assert 1 <= connections <= 5 < requests // 3  # concurrency 4 + one for token renewal


async def test_ssl_cert_file_instead_of_ca_file(
    tls: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_CERT_FILE naming the CA replaces the system store: both sources dump without ca_file."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_pem))
    settings = SimSettings(nobb_items=1200, dbk_products=600, dbk_max_products=200, rate_limit=0,
                           seed=23)  # fmt: skip
    async with Simulator(settings, ssl_context=tls.server_context()) as sim:
        nobb = await dump_nobb(sim, tmp_path)
        dbk = await run_dbk(sim, tmp_path)
        books = sim.ctx.books
    assert nobb.manifest.complete and nobb.manifest.records == 1200
    assert written_dbk(dbk) == expected_dbk(books, range(books.size))


def _subject_hash(pem: Path) -> str:
    """OpenSSL's subject hash of a certificate (the name c_rehash gives it in a directory)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to name the hashed file")
    return subprocess.run([openssl, "x509", "-hash", "-noout", "-in", str(pem)],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip


async def test_ssl_cert_dir_is_honoured(
    tls: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SSL_CERT_DIR, a directory of hashed CA certificates, works as SSL_CERT_FILE does."""
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / f"{_subject_hash(tls.ca_pem)}.0").write_text(tls.ca_pem.read_text())
    monkeypatch.setenv("SSL_CERT_DIR", str(certs))
    other = tmp_path / "other-ca.pem"  # the file names an unrelated CA: only the directory helps
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    async with Simulator(SimSettings(nobb_items=300, rate_limit=0, seed=24),
                         ssl_context=tls.server_context()) as sim:  # fmt: skip
        result = await dump_nobb(sim, tmp_path / "out")
    assert result.manifest.complete and result.manifest.records == 300


def _config(path: Path, sim: Simulator, out: Path, extra: str = "") -> Path:
    api = (f'base_url = "{sim.url}"\nusername = "harvester"\npassword = "harvester"\n'
           f'rate_limit = "0"\nretries = 2\n{extra}')  # fmt: skip
    path.write_text(f'[output]\ndir = "{out}"\n[nobb]\n{api}page_size = 100\n'
                    f"[dbk]\n{api}workers = 0\nmax_products_per_response = 200\n")  # fmt: skip
    return path


async def test_unknown_ca_stops_each_source_before_anything_is_written(
    tls: TlsFiles, tmp_path: Path
) -> None:
    """No ca_file, no SSL_CERT_FILE: one line per source naming host, reason and key; exit 2."""
    settings = SimSettings(nobb_items=300, dbk_products=300, rate_limit=0, seed=25)
    out = tmp_path / "out"
    async with Simulator(settings, ssl_context=tls.server_context()) as sim:
        cfg = _config(tmp_path / "c.toml", sim, out)
        code, _, stderr = await cli("dump", "all", "--config", str(cfg))
        served = sim.stats["nobb_requests"] + sim.stats["dbk_requests"]
        host = f"127.0.0.1:{sim.port}"
    assert code == 2
    assert stderr.splitlines() == [
        f"error: {name}: {host}: certificate verify failed: unable to get local issuer "
        f"certificate; if a company CA re-signs TLS on this network, add its PEM bundle as "
        f"{name}.ca_file (or set SSL_CERT_FILE)"
        for name in ("nobb", "dbk")
    ], stderr
    assert not out.exists()  # not even the source directories or their locks
    assert served == 0


async def test_self_signed_chain_names_openssl_reason(tls: TlsFiles, tmp_path: Path) -> None:
    """A server sending its own root: 'self-signed certificate in certificate chain', exit 2."""
    ca = trustme.CA()
    chain = tmp_path / "chain.pem"
    leaf = ca.issue_cert("127.0.0.1")
    chain.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems) + ca.cert_pem.bytes())
    key = tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    out = tmp_path / "out"
    async with Simulator(SimSettings(nobb_items=100, rate_limit=0), tls_cert=chain,
                         tls_key=key) as sim:  # fmt: skip
        cfg = _config(tmp_path / "c.toml", sim, out)
        code, _, stderr = await cli("dump", "nobb", "--config", str(cfg))
    assert code == 2
    assert stderr == (
        f"error: nobb: 127.0.0.1:{sim.port}: certificate verify failed: self-signed certificate "
        "in certificate chain; if a company CA re-signs TLS on this network, add its PEM bundle "
        "as nobb.ca_file (or set SSL_CERT_FILE)\n"
    )
    assert not out.exists()


async def test_a_certificate_for_another_host_is_refused(tls: TlsFiles, tmp_path: Path) -> None:
    """A CA-signed certificate for another name: the host name check holds even with ca_file."""
    ca = trustme.CA()
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem.bytes())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("elsewhere.example").configure_cert(context)
    async with Simulator(SimSettings(nobb_items=10), ssl_context=context) as sim:
        client = HttpClient(HttpSettings(ca_file=tmp_path / "ca.pem", name="nobb"),
                            base_url=sim.url, env={})  # fmt: skip
        async with client:
            with pytest.raises(CertificateError) as info:
                await client.check()
    assert info.value.host == f"127.0.0.1:{sim.port}"
    assert info.value.reason.startswith("certificate verify failed: IP address mismatch")


async def test_tls_below_1_2_is_refused(tls: TlsFiles) -> None:
    """A server that speaks TLS 1.1 at most gets no connection; the client context says 1.2."""
    assert client_context(env={}).minimum_version is ssl.TLSVersion.TLSv1_2
    old = tls.server_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is: that is the point
        old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    async with Simulator(SimSettings(nobb_items=10), ssl_context=old) as sim:
        async with HttpClient(HttpSettings(ca_file=tls.ca_pem), base_url=sim.url, env={}) as http:
            with pytest.raises(ConnectError) as info:
                await http.check()
    # The server finds no protocol in common and drops the handshake.
    assert (
        str(info.value)
        == f"cannot connect to 127.0.0.1:{sim.port}: ConnectionResetError [TLS check]"
    )


async def test_the_client_speaks_tls_1_2_or_newer_and_reuses_connections(tls: TlsFiles) -> None:
    """Ten requests on one connection, over TLS 1.2+; ``report`` counts the one connection."""
    report: dict[str, object] = {}
    async with Simulator(SimSettings(nobb_items=50), ssl_context=tls.server_context()) as sim:
        settings = HttpSettings(ca_file=tls.ca_pem, concurrency=1)
        async with HttpClient(settings, base_url=sim.url, env={}, report=report) as http:
            for _ in range(10):
                request = Request(method="GET", url="/api/v2/items", params=(("pageSize", "5"),),
                                  headers=tuple(basic_auth(sim.settings).items()))  # fmt: skip
                async with http.stream(request) as resp:
                    assert resp.status == 200
                    await resp.read()
    assert report == {
        "connections": 1,
        "scheme": "https",
        "proxy": None,
        "accept_encoding": "gzip, br;q=0.5",
        "accept_encoding_rule": "configured",
    }


def test_ca_file_problems_are_config_errors_naming_the_key(tmp_path: Path) -> None:
    """A missing or non-PEM ca_file, or an SSL_CERT_FILE naming nothing: exit 2, key named."""
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    raw = {"nobb": {"username": "u", "password": "p", "ca_file": str(tmp_path / "missing.pem")}}
    with pytest.raises(ConfigError, match=r"^nobb\.ca_file: cannot read .*missing\.pem: No such"):
        parse_config(raw, {})
    raw["nobb"]["ca_file"] = str(tmp_path / "junk.pem")
    with pytest.raises(ConfigError, match=r"^nobb\.ca_file: .*junk\.pem holds no PEM certificate"):
        parse_config(raw, {})
    with pytest.raises(ConfigError, match=r"^SSL_CERT_FILE: /nowhere\.pem is not a readable file"):
        client_context(env={"SSL_CERT_FILE": "/nowhere.pem"})
    with pytest.raises(ConfigError, match=r"^SSL_CERT_FILE: cannot load .*junk\.pem: NO_CERT"):
        client_context(env={"SSL_CERT_FILE": str(tmp_path / "junk.pem")})
    with pytest.raises(ConfigError, match=r"^SSL_CERT_DIR: /nowhere is not a readable directory"):
        client_context(env={"SSL_CERT_DIR": "/nowhere"})
