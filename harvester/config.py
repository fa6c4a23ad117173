"""Configuration: frozen dataclasses, each validated in ``__post_init__``.

``config_file.py`` turns the TOML file into these (``load_config``); tests and the demo build
them directly. Anything wrong raises ``ConfigError`` naming the key (exit 2), before any network
I/O. Secrets are kept in ``Secret`` values that never print, and ``Config.digest()`` hashes the
configuration with secrets removed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import orjson

from harvester.errors import ConfigError
from harvester.proxies import ProxyUrl

__all__ = [
    "Config",
    "DbkConfig",
    "NobbConfig",
    "OutputConfig",
    "Secret",
    "is_loopback",
    "parse_rate",
]

Compression = Literal["gzip", "none", "zstd"]
FiltersIn = Literal["query", "body"]
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*(s|sec|m|min|h)?\s*$")


class Secret:
    """A credential: compares by value, prints as ``'***'``, never serialised."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself: only for building the request that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def parse_rate(text: str, *, key: str) -> tuple[float, float]:
    """``"600/60s"``, ``"10/s"``, ``"120/min"`` → (max_rate, period seconds); "0": no ceiling."""
    if text.strip() in ("0", "none", "off"):
        return (0.0, 1.0)
    m = _RATE.match(text)
    if not m:
        raise ConfigError(
            f'{key}: expected "auto", "0" or a rate like "600/60s" or "10/s", not {text!r}'
        )
    rate = float(m.group(1))
    amount = float(m.group(2) or 1)
    unit = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}[m.group(3) or "s"]
    if rate <= 0 or amount <= 0:
        raise ConfigError(f"{key}: rate and period must be positive in {text!r}")
    return (rate, amount * unit)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: the only hosts plain http may reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputConfig:
    """``[output]``: where and how shards are written (``dir``: a Path, or an s3:// URL)."""

    dir: Path | str = Path("out")
    compression: Compression = "gzip"
    gzip_level: int = 1
    shard_max_records: int = 100_000
    shard_max_bytes: int = 1 << 30
    prometheus_file: Path | None = None
    checkpoint_seconds: float = 60.0
    #: Object storage only: how long a failing store call is retried, and the lock's lease.
    store_retry_seconds: float = 120.0
    lock_lease_seconds: float = 60.0
    #: After every complete sync, merge it into a new snapshot (``harvester compact``).
    compact_after_sync: bool = False

    def __post_init__(self) -> None:
        if self.checkpoint_seconds <= 0:
            raise ConfigError("output.checkpoint_seconds: expected > 0")
        if self.store_retry_seconds <= 0 or self.lock_lease_seconds < 1:
            raise ConfigError(
                "output.store_retry_seconds must be > 0 and output.lock_lease_seconds >= 1"
            )
        if self.compression not in get_args(Compression):
            raise ConfigError(
                f"output.compression: expected gzip, none or zstd, not {self.compression!r}"
            )
        if not 1 <= self.gzip_level <= 9:
            raise ConfigError("output.gzip_level: expected 1..9")
        if self.shard_max_records < 1 or self.shard_max_bytes < 1024:
            raise ConfigError("output.shard_max_records must be >= 1 and shard_max_bytes >= 1024")


@dataclass(frozen=True, slots=True, kw_only=True)
class _ApiConfig:
    """Keys shared by both sources: endpoint, credentials, limits, timeouts, retries."""

    base_url: str
    username: Secret
    password: Secret
    #: "auto" follows the server's headers; "N/Ts" is also a ceiling; "0" no ceiling.
    rate_limit: str = "auto"
    concurrency: int = 4
    connect_timeout: float = 10.0
    first_byte_timeout: float = 120.0
    read_timeout: float = 60.0
    max_body_mb: int = 2048
    retries: int = 6
    sync_overlap_days: float = 1.0
    #: "auto": identity to a loopback host without a proxy, "gzip, br;q=0.5" elsewhere.
    accept_encoding: str = "auto"
    #: A PEM bundle trusted besides the system store (a company CA that re-signs TLS).
    ca_file: Path | None = None
    #: ``http://[user:password@]host:port``; wins over HTTPS_PROXY / HTTP_PROXY / NO_PROXY.
    proxy: ProxyUrl | None = None

    def _check(self, section: str) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{section}.base_url: expected an http(s) URL, not {self.base_url!r}")
        if parts.username or parts.password:
            raise ConfigError(
                f"{section}.base_url: put credentials in username/password, not the URL"
            )
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ConfigError(
                f"{section}.base_url: plain http is allowed only to loopback; use https for "
                f"{parts.hostname}"
            )
        if self.rate_limit.strip().lower() != "auto":
            parse_rate(self.rate_limit, key=f"{section}.rate_limit")
        if not 1 <= self.concurrency <= 64:
            raise ConfigError(f"{section}.concurrency: expected 1..64")
        for name in ("connect_timeout", "first_byte_timeout", "read_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{section}.{name}: must be > 0")
        offered = [e.strip().split(";")[0] for e in self.accept_encoding.split(",")]
        if self.accept_encoding.strip().lower() != "auto" and (
            not offered or not set(offered) <= {"gzip", "br", "identity", "deflate"}
        ):
            raise ConfigError(
                f'{section}.accept_encoding: "auto", or a list of gzip, br, identity, not '
                f"{self.accept_encoding!r}"
            )
        if self.max_body_mb < 1 or self.retries < 0 or self.sync_overlap_days < 0:
            raise ConfigError(f"{section}: max_body_mb >= 1, retries >= 0, sync_overlap_days >= 0")

    @property
    def rate(self) -> tuple[float, float] | None:
        """The configured ceiling (max_rate, period); None for "auto" or "0"."""
        if self.rate_limit.strip().lower() == "auto":
            return None
        rate, period = parse_rate(self.rate_limit, key="rate_limit")
        return (rate, period) if rate > 0 else None


@dataclass(frozen=True, slots=True, kw_only=True)
class NobbConfig(_ApiConfig):
    """``[nobb]``: the NOBB Export API."""

    base_url: str = "https://export.byggtjeneste.no"
    concurrency: int = 8
    page_size: int = 10_000
    two_ended: bool = True
    partitions: int = 0
    suppliers: tuple[str, ...] = ()
    token_ttl: float = 7200.0
    walk_max_seconds: float = 5400.0

    def __post_init__(self) -> None:
        self._check("nobb")
        if not 1 <= self.page_size <= 10_000:
            raise ConfigError("nobb.page_size: expected 1..10000 (the API's maximum)")
        if self.partitions < 0:
            raise ConfigError("nobb.partitions: expected 0 (auto) or a positive count")
        if not 0 < self.walk_max_seconds < self.token_ttl:
            raise ConfigError("nobb.walk_max_seconds must be > 0 and below nobb.token_ttl")


@dataclass(frozen=True, slots=True, kw_only=True)
class DbkConfig(_ApiConfig):
    """``[dbk]``: the DBK / Bogportalen ONIX 3.1 export."""

    base_url: str = "https://dbk-dw10.ditnyewebsite.dk"
    publisher: str | None = None
    product_ids: tuple[str, ...] = ()
    start: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_products_per_response: int = 2000
    filters_in: FiltersIn = "query"
    workers: int = 2
    token_refresh_margin: float = 60.0

    def __post_init__(self) -> None:
        self._check("dbk")
        if self.max_products_per_response < 1:
            raise ConfigError("dbk.max_products_per_response: expected >= 1")
        if self.filters_in not in get_args(FiltersIn):
            raise ConfigError(f"dbk.filters_in: expected query or body, not {self.filters_in!r}")
        if not 0 <= self.workers <= 32:
            raise ConfigError("dbk.workers: expected 0..32 (0 or 1 converts in the main process)")
        for pid in self.product_ids:
            if not re.fullmatch(r"\d{13}", pid):
                raise ConfigError(f"dbk.product_ids: {pid!r} is not a 13-digit EAN")


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole validated configuration; ``nobb``/``dbk`` are None when their section is absent."""

    output: OutputConfig = field(default_factory=OutputConfig)
    nobb: NobbConfig | None = None
    dbk: DbkConfig | None = None

    def digest(self) -> str:
        """sha256 of the configuration with every secret removed (for manifests)."""
        return hashlib.sha256(orjson.dumps(_public(self), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _public(value: Any) -> Any:
    if isinstance(value, Secret):
        return "***"
    if isinstance(value, ProxyUrl):
        return value.url  # never its credentials
    if isinstance(value, (OutputConfig, NobbConfig, DbkConfig, Config)):
        return {f.name: _public(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (Path, datetime)):
        return str(value)
    if isinstance(value, tuple):
        return [_public(v) for v in value]
    return value
