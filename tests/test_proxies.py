"""Proxy choice as curl and requests read the environment: literal values, no network."""

from __future__ import annotations

import pytest

from harvester.config import NobbConfig, Secret
from harvester.errors import ConfigError
from harvester.proxies import ProxyUrl, bypassed, choose, env_value


def _pick(env: dict[str, str], url: str = "https://api.example.com:443") -> str | None:
    scheme, rest = url.split("://")
    host, port = rest.rsplit(":", 1)
    found = choose(scheme, host.strip("[]"), int(port), configured=None, key="nobb.proxy", env=env)
    return None if found is None else f"{found.proxy.url} <- {found.origin}"


def test_https_uses_https_proxy_and_http_uses_http_proxy() -> None:
    """The variable follows the base URL's scheme; ALL_PROXY is the fallback of both."""
    env = {"HTTPS_PROXY": "http://s.corp:3128", "HTTP_PROXY": "http://p.corp:8080"}
    assert _pick(env) == "http://s.corp:3128 <- HTTPS_PROXY"
    assert _pick(env, "http://127.0.0.1:80") == "http://p.corp:8080 <- HTTP_PROXY"
    assert _pick({"ALL_PROXY": "http://a.corp:1"}) == "http://a.corp:1 <- ALL_PROXY"
    assert _pick({"HTTP_PROXY": "http://p.corp:8080"}) is None
    assert _pick({}) is None


def test_any_letter_case_with_lower_case_first() -> None:
    """https_proxy beats HTTPS_PROXY; Https_Proxy counts too; an empty value is unset."""
    env = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2"}
    assert _pick(env) == "http://lower:2 <- https_proxy"
    assert _pick({"Https_Proxy": "http://mixed:3"}) == "http://mixed:3 <- Https_Proxy"
    assert _pick({"https_proxy": " ", "HTTPS_PROXY": "http://upper:1"}) == (
        "http://upper:1 <- HTTPS_PROXY"
    )


def test_uppercase_http_proxy_is_ignored_under_cgi() -> None:
    """With REQUEST_METHOD set, HTTP_PROXY may be a client's Proxy: header: only http_proxy."""
    cgi = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://evil:1"}
    assert env_value(cgi, "http_proxy") is None
    assert env_value({**cgi, "http_proxy": "http://ok:2"}, "http_proxy") == (
        "http_proxy",
        "http://ok:2",
    )


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("*", "api.example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        ("example.com", "example.com", 443, True),
        (".example.com", "example.com", 443, True),
        ("*.example.com", "a.b.example.com", 443, True),
        ("example.com", "notexample.com", 443, False),
        ("other.org, example.com", "api.example.com", 443, True),
        ("other.org example.com", "api.example.com", 443, True),
        ("EXAMPLE.com", "Api.Example.COM", 443, True),
        ("example.com:8443", "api.example.com", 443, False),
        ("example.com:8443", "api.example.com", 8443, True),
        ("127.0.0.1", "127.0.0.1", 8443, True),
        ("127.0.0.1:8443", "127.0.0.1", 8443, True),
        ("127.0.0.1:8443", "127.0.0.1", 9443, False),
        ("10.0.0.0/8", "10.1.2.3", 443, True),
        ("10.0.0.0/8", "11.1.2.3", 443, False),
        ("::1", "::1", 443, True),
        ("[::1]:8443", "[::1]", 8443, True),
        ("[::1]:8443", "::1", 443, False),
        ("", "api.example.com", 443, False),
    ],
)  # fmt: skip
def test_no_proxy_entries(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    """NO_PROXY: *, hosts, domains (with or without a leading dot), ports, IPs, CIDR ranges."""
    assert bypassed(host, port, no_proxy) is bypass


def test_no_proxy_in_the_environment_bypasses_and_the_key_wins() -> None:
    """NO_PROXY (any case) sends the request direct; a configured proxy is used regardless."""
    env = {"HTTPS_PROXY": "http://s.corp:3128", "no_proxy": "example.com"}
    assert _pick(env) is None
    key = ProxyUrl.parse("http://mine:9", key="nobb.proxy")
    found = choose("https", "api.example.com", 443, configured=key, key="nobb.proxy", env=env)
    assert found is not None and (found.proxy.url, found.origin) == ("http://mine:9", "nobb.proxy")


def test_proxy_url_forms_and_defaults() -> None:
    """No scheme means http; the port defaults to the scheme's; IPv6 hosts keep brackets."""
    assert ProxyUrl.parse("proxy.corp:3128", key="k").url == "http://proxy.corp:3128"
    assert ProxyUrl.parse("http://proxy.corp", key="k").url == "http://proxy.corp:80"
    assert ProxyUrl.parse("https://proxy.corp/", key="k").url == "https://proxy.corp:443"
    assert ProxyUrl.parse("http://[::1]:3128", key="k").url == "http://[::1]:3128"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("socks5://u:hunter2@s:1080", "nobb.proxy: a socks5:// proxy is not supported"),
        ("http://u:hunter2@:3128", "nobb.proxy: expected http://host:port, the host is missing"),
        ("http://u:hunter2@p:3128/x", "nobb.proxy: expected http://host:port, without a path"),
        ("http://u:hunter2@p:99999", "nobb.proxy: not a proxy URL like http://host:port"),
    ],
)  # fmt: skip
def test_bad_proxy_urls_are_named_without_their_credentials(text: str, message: str) -> None:
    """A bad proxy URL is a ConfigError naming the key, never echoing the password."""
    with pytest.raises(ConfigError) as info:
        ProxyUrl.parse(text, key="nobb.proxy")
    assert str(info.value).startswith(message)
    assert "hunter2" not in str(info.value)


def test_credentials_stay_inside_the_proxy_url() -> None:
    """repr, the config's repr and its digest show host and port; the header carries the rest."""
    proxy = ProxyUrl.parse("http://us%40er:p%3Ass%40Q7x@proxy.corp:3128", key="nobb.proxy")
    assert repr(proxy) == "ProxyUrl('http://proxy.corp:3128', with credentials)"
    assert proxy.authorization() == "Basic dXNAZXI6cDpzc0BRN3g="  # us@er:p:ss@Q7x
    cfg = NobbConfig(username=Secret("u"), password=Secret("p"), proxy=proxy)
    assert "Q7x" not in repr(cfg) and "p%3Ass" not in repr(cfg)
    same_host = NobbConfig(username=Secret("u"), password=Secret("p"),
                           proxy=ProxyUrl.parse("http://proxy.corp:3128", key="k"))  # fmt: skip
    from harvester.config import Config

    assert Config(nobb=cfg).digest() == Config(nobb=same_host).digest()
    assert ProxyUrl.parse("http://proxy.corp:3128", key="k").authorization() is None
