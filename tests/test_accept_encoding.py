"""The "auto" Accept-Encoding rule: identity to loopback without a proxy, gzip first elsewhere;
what was offered and why is in the manifest's transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from harvester.config import NobbConfig
from harvester.engine.encoding import COMPRESSED, offer
from harvester.engine.http import HttpClient, HttpSettings, Request
from harvester.errors import ConfigError
from harvester.proxies import ProxyUrl
from harvester.sim.server import Simulator
from harvester.sim.settings import SimSettings
from tests.harness import dump_nobb

LOOPBACK_RULE = "auto: loopback, no proxy (the wire is free, inflating is not)"


@pytest.mark.parametrize(
    ("host", "proxied", "expected"),
    [
        ("127.0.0.1", False, ("identity", LOOPBACK_RULE)),
        ("127.8.9.10", False, ("identity", LOOPBACK_RULE)),
        ("::1", False, ("identity", LOOPBACK_RULE)),
        ("LocalHost", False, ("identity", LOOPBACK_RULE)),
        ("127.0.0.1", True, (COMPRESSED, "auto: through a proxy (compression saves the wire)")),
        ("10.0.0.5", False, (COMPRESSED, "auto: a network host (compression saves the wire)")),
        ("export.byggtjeneste.no", False,
         (COMPRESSED, "auto: a network host (compression saves the wire)")),
    ],
)  # fmt: skip
def test_auto_offers_identity_only_to_loopback_without_proxy(
    host: str, proxied: bool, expected: tuple[str, str]
) -> None:
    """ "auto" gives identity to a loopback host reached directly, gzip-first everywhere else."""
    assert offer("auto", host, proxied=proxied) == expected
    assert offer(" AUTO ", host, proxied=proxied) == expected


@pytest.mark.parametrize("setting", ["gzip", "br", "identity", "gzip, br;q=0.5", "br, gzip;q=0.1"])
def test_a_configured_list_is_offered_as_is(setting: str) -> None:
    """Any setting but "auto" is sent unchanged, wherever the host is."""
    for host in ("127.0.0.1", "api.example.com"):
        assert offer(setting, host, proxied=False) == (setting, "configured")


def test_config_defaults_to_auto_and_still_rejects_unknown_codings() -> None:
    """The section default is "auto"; an unknown coding is a ConfigError naming the key."""
    cfg = NobbConfig(username="u", password="p")  # type: ignore[arg-type]
    assert cfg.accept_encoding == "auto"
    with pytest.raises(ConfigError, match=r'nobb\.accept_encoding: "auto", or a list'):
        NobbConfig(username="u", password="p", accept_encoding="zstd")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"nobb\.accept_encoding"):
        NobbConfig(username="u", password="p", accept_encoding="auto, gzip")  # type: ignore[arg-type]


@pytest.fixture
async def echo() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback server that records each request's Accept-Encoding and answers identity."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Accept-Encoding", ""))
        return web.Response(body=b"[]")

    app = web.Application()
    app.router.add_get("/x", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("setting", "header", "rule"),
    [("auto", "identity", LOOPBACK_RULE), ("gzip, br;q=0.5", COMPRESSED, "configured")],
)
async def test_the_header_sent_and_the_report_follow_the_rule(
    echo: tuple[str, list[str]], setting: str, header: str, rule: str
) -> None:
    """The request carries the chosen value; the client's report names it and its rule."""
    url, seen = echo
    report: dict[str, object] = {}
    async with HttpClient(HttpSettings(accept_encoding=setting), base_url=url, env={},
                          report=report) as http:  # fmt: skip
        async with http.stream(Request(method="GET", url="/x", label="x")) as resp:
            assert b"".join([c async for c in resp.chunks()]) == b"[]"
    assert seen == [header]
    assert report["accept_encoding"] == header
    assert report["accept_encoding_rule"] == rule


async def test_through_a_proxy_auto_offers_compression(echo: tuple[str, list[str]]) -> None:
    """A configured proxy makes "auto" offer gzip first even to a loopback host (report only:
    no request is sent, the proxy does not exist)."""
    url, _ = echo
    report: dict[str, object] = {}
    proxy = ProxyUrl.parse("http://127.0.0.1:9", key="nobb.proxy")
    async with HttpClient(HttpSettings(accept_encoding="auto", proxy=proxy), base_url=url,
                          env={}, report=report):  # fmt: skip
        pass
    assert report["accept_encoding"] == COMPRESSED
    assert report["accept_encoding_rule"] == "auto: through a proxy (compression saves the wire)"


async def test_default_dump_to_the_simulator_reads_identity(tmp_path: Path) -> None:
    """A default-config dump over loopback asks for identity; its manifest says so and why."""
    async with Simulator(SimSettings(nobb_items=300, rate_limit=0, seed=5)) as sim:
        result = await dump_nobb(sim, tmp_path)
    assert result.exit_code == 0 and result.manifest.records == 300
    manifest = orjson.loads((result.run_dir / "manifest.json").read_bytes())
    assert manifest["transport"]["accept_encoding"] == "identity"
    assert manifest["transport"]["accept_encoding_rule"] == LOOPBACK_RULE


async def test_the_verbose_log_names_the_offer_and_its_rule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """-v's transport line says what Accept-Encoding was offered and why."""
    caplog.set_level("INFO", logger="harvester")
    async with Simulator(SimSettings(nobb_items=50, rate_limit=0, seed=6)) as sim:
        result = await dump_nobb(sim, tmp_path)
    assert result.exit_code == 0
    lines = [r.getMessage() for r in caplog.records if "connection(s) opened" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].endswith(f"; Accept-Encoding: identity ({LOOPBACK_RULE})")
