"""The settings of one API's HTTP client: connection limits, timeouts, body cap, TLS and proxy.

``HttpClient`` (``http.py``, which re-exports ``HttpSettings``) is built from them;
``sources/endpoint.py`` fills them from a source's config section.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harvester.engine.encoding import COMPRESSED
from harvester.errors import ConfigError
from harvester.proxies import ProxyUrl

__all__ = ["HttpSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """Connection limits and timeouts of one API's client."""

    concurrency: int = 4
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    read_timeout: float = 60.0
    max_body_bytes: int = 2 << 30
    chunk_size: int = 1 << 16
    user_agent: str = "harvester/0.1"
    #: What the client offers, or "auto": identity to loopback, gzip first elsewhere
    #: (``encoding.offer``); "identity" saves CPU on both ends where bandwidth is free.
    accept_encoding: str = COMPRESSED
    #: A PEM bundle trusted besides the system store (a company CA).
    ca_file: Path | None = None
    #: The configured proxy; None: the environment's (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).
    proxy: ProxyUrl | None = None
    #: The config section, so errors name its keys (``nobb.ca_file``, ``nobb.proxy``).
    name: str = ""

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_body_bytes < 1 or self.chunk_size < 1:
            raise ConfigError("concurrency, max_body_bytes and chunk_size must be positive")
        if min(self.connect_timeout, self.first_byte_timeout, self.read_timeout) <= 0:
            raise ConfigError("timeouts must be positive")
