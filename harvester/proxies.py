"""Which proxy a request goes through: the ``proxy`` key, else the environment, as curl reads it.

``ProxyUrl.parse`` reads ``http://[user:password@]host[:port]``; the credentials stay inside it
(``display`` and ``repr`` show scheme, host and port only), so no log line, error, manifest or
config digest can carry them. ``choose`` picks a source's proxy: the configured one wins; else
``HTTPS_PROXY`` for an https base URL and ``HTTP_PROXY`` for http, then ``ALL_PROXY``, unless
``NO_PROXY`` matches the host. Variable names are read in any letter case, the lower-case
spelling first (curl, requests and urllib agree on that); uppercase ``HTTP_PROXY`` is ignored
when ``REQUEST_METHOD`` is set (a CGI environment, where a client's ``Proxy:`` header would
arrive as ``HTTP_PROXY``). ``NO_PROXY`` is a comma- or space-separated list of ``*`` (no proxy
at all), host names and domains (``example.com`` and ``.example.com`` both match the domain and
every host under it), IP addresses and CIDR ranges, each optionally with ``:port`` to match
that port only.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from harvester.errors import ConfigError

__all__ = ["ProxyChoice", "ProxyUrl", "bypassed", "choose", "env_value"]

_PORTS = {"http": 80, "https": 443}


class ProxyUrl:
    """A proxy's address and, separately, its credentials: prints as ``scheme://host:port``."""

    __slots__ = ("_password", "_user", "host", "port", "scheme")

    def __init__(self, scheme: str, host: str, port: int, user: str = "", password: str = ""):
        self.scheme, self.host, self.port = scheme, host, port
        self._user, self._password = user, password

    @classmethod
    def parse(cls, text: str, *, key: str) -> ProxyUrl:
        """``http://[user:password@]host[:port]`` (no scheme: http); errors never echo ``text``."""
        raw = text.strip()
        if "://" not in raw:
            raw = "http://" + raw  # curl's reading of "proxy.corp:3128"
        try:
            parts = urlsplit(raw)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"{key}: not a proxy URL like http://host:port ({exc})") from None
        scheme = parts.scheme.lower()
        if scheme not in _PORTS:
            raise ConfigError(
                f"{key}: a {scheme}:// proxy is not supported; expected http://host:port"
            )
        if not parts.hostname:
            raise ConfigError(f"{key}: expected http://host:port, the host is missing")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError(f"{key}: expected http://host:port, without a path or query")
        return cls(
            scheme,
            parts.hostname,
            port or _PORTS[scheme],
            unquote(parts.username or ""),
            unquote(parts.password or ""),
        )

    @property
    def url(self) -> str:
        """The proxy's URL without credentials (what the connection is opened to)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def has_credentials(self) -> bool:
        return bool(self._user or self._password)

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (Basic), or None: only for the request itself."""
        if not self.has_credentials:
            return None
        return "Basic " + base64.b64encode(f"{self._user}:{self._password}".encode()).decode()

    def __repr__(self) -> str:
        return f"ProxyUrl({self.url!r}{', with credentials' if self.has_credentials else ''})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProxyUrl) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str, str, int, str, str]:
        return (self.scheme, self.host, self.port, self._user, self._password)


@dataclass(frozen=True, slots=True)
class ProxyChoice:
    """The proxy a client uses and where it came from (``nobb.proxy``, ``HTTPS_PROXY``...)."""

    proxy: ProxyUrl
    origin: str


def env_value(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(the variable's name as set, its value) for ``name`` in any case, lower-case first."""
    lower = name.lower()
    found = [(k, v) for k, v in env.items() if k.lower() == lower and v.strip()]
    if lower == "http_proxy" and "REQUEST_METHOD" in env:
        found = [(k, v) for k, v in found if k == lower]
    found.sort(key=lambda kv: (kv[0] != lower, kv[0]))
    return found[0] if found else None


def _entry(item: str) -> tuple[str, int | None]:
    """A NO_PROXY entry as (host, domain or network; port or None)."""
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", item)
    if m:
        return m.group(1), int(m.group(2)) if m.group(2) else None
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        if port.isdigit():
            return host, int(port)
    return item, None


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """True if ``NO_PROXY``'s value says ``host:port`` is reached directly."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for item in re.split(r"[,\s]+", no_proxy.strip().lower()):
        if not item:
            continue
        if item == "*":
            return True
        name, only = _entry(item)
        if only is not None and only != port:
            continue
        try:
            network = ipaddress.ip_network(name, strict=False)
        except ValueError:
            name = name.lstrip("*").lstrip(".").rstrip(".")
            if name and (host == name or host.endswith("." + name)):
                return True
            continue
        if address is not None and address in network:
            return True
    return False


def choose(
    scheme: str,
    host: str,
    port: int,
    *,
    configured: ProxyUrl | None,
    key: str,
    env: Mapping[str, str],
) -> ProxyChoice | None:
    """The proxy for ``scheme://host:port``: ``configured`` (named ``key``), else the
    environment's, else None (a direct connection)."""
    if configured is not None:
        return ProxyChoice(configured, key)
    no_proxy = env_value(env, "no_proxy")
    if no_proxy is not None and bypassed(host, port, no_proxy[1]):
        return None
    for name in (f"{scheme}_proxy", "all_proxy"):
        found = env_value(env, name)
        if found is not None:
            return ProxyChoice(ProxyUrl.parse(found[1], key=found[0]), found[0])
    return None
