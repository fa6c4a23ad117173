"""The config file: TOML in, a validated ``Config`` out, once, at the edge.

``load_config(path)`` reads the file, expands ``${NAME}`` from the environment, checks every key
and type, and returns a ``Config``. Anything wrong raises ``ConfigError`` naming the key (exit 2),
before any network I/O. Secrets come from the environment (``${NOBB_PASSWORD}``), from a file
readable by its owner only (``password_file``, mode 0600), or, accepted but not advised, as the
literal value in the TOML.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harvester.config import Config, DbkConfig, NobbConfig, OutputConfig, Secret
from harvester.engine.tls import client_context
from harvester.errors import ConfigError
from harvester.proxies import ProxyUrl
from harvester.store.storage import out_dir

__all__ = ["load_config", "parse_config"]

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: str, key: str, env: Mapping[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in env:
            raise ConfigError(f"{key}: environment variable {name} is not set")
        return env[name]

    return _ENV.sub(sub, value)


def _read_secret_file(path: str, key: str) -> str:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from exc
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(f"{key}: {path} must be readable by its owner only (chmod 600)")
    with open(path, encoding="utf-8") as fh:
        return fh.read().strip()


_TYPES: dict[str, type | tuple[type, ...]] = {
    "dir": str,
    "compression": str,
    "gzip_level": int,
    "shard_max_records": int,
    "shard_max_bytes": int,
    "prometheus_file": str,
    "checkpoint_seconds": (int, float),
    "store_retry_seconds": (int, float),
    "lock_lease_seconds": (int, float),
    "base_url": str,
    "username": str,
    "password": str,
    "password_file": str,
    "rate_limit": str,
    "concurrency": int,
    "connect_timeout": (int, float),
    "first_byte_timeout": (int, float),
    "read_timeout": (int, float),
    "max_body_mb": int,
    "retries": int,
    "sync_overlap_days": (int, float),
    "accept_encoding": str,
    "page_size": int,
    "two_ended": bool,
    "compact_after_sync": bool,
    "partitions": int,
    "suppliers": list,
    "token_ttl": (int, float),
    "walk_max_seconds": (int, float),
    "publisher": str,
    "product_ids": list,
    "start": str,
    "max_products_per_response": int,
    "filters_in": str,
    "workers": int,
    "token_refresh_margin": (int, float),
    "ca_file": str,
    "proxy": str,
}


def _section(raw: object, cls: type, name: str, env: Mapping[str, str]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    allowed = {f.name for f in fields(cls)} | ({"password_file"} if name != "output" else set())
    out: dict[str, Any] = {}
    for key, value in raw.items():
        full = f"{name}.{key}"
        if key not in allowed:
            raise ConfigError(f"{full}: unknown key (allowed: {', '.join(sorted(allowed))})")
        want = _TYPES[key]
        if isinstance(value, bool) and want is not bool:
            raise ConfigError(f"{full}: expected {_tname(want)}, got a boolean")
        if not isinstance(value, want):
            raise ConfigError(f"{full}: expected {_tname(want)}, got {type(value).__name__}")
        if isinstance(value, str):
            value = _expand(value, full, env)
        if isinstance(value, list):
            if not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
                raise ConfigError(f"{full}: expected a list of strings")
            value = tuple(_expand(str(v), full, env) for v in value)
        out[key] = value
    return out


def _tname(t: type | tuple[type, ...]) -> str:
    if isinstance(t, tuple):
        return "a number"
    return {str: "a string", int: "an integer", bool: "true or false", list: "a list"}[t]


def _api(
    raw: object, cls: type[NobbConfig] | type[DbkConfig], name: str, env: Mapping[str, str]
) -> Any:
    kw = _section(raw, cls, name, env)
    if "password_file" in kw:
        if "password" in kw:
            raise ConfigError(f"{name}: set password or password_file, not both")
        kw["password"] = _read_secret_file(kw.pop("password_file"), f"{name}.password_file")
    for key in ("username", "password"):
        if key not in kw:
            raise ConfigError(
                f'{name}.{key}: required (e.g. {key} = "${{{name.upper()}_{key.upper()}}}")'
            )
        if not kw[key]:
            raise ConfigError(f"{name}.{key}: is empty")
        kw[key] = Secret(kw[key])
    if "start" in kw:
        kw["start"] = _parse_start(kw["start"], f"{name}.start")
    if "ca_file" in kw:
        kw["ca_file"] = Path(kw["ca_file"])
        client_context(kw["ca_file"], key=f"{name}.ca_file", env=env)  # readable, PEM: now
    if "proxy" in kw:
        kw["proxy"] = ProxyUrl.parse(kw["proxy"], key=f"{name}.proxy")
    for key, value in kw.items():
        if _TYPES[key] == (int, float):
            kw[key] = float(value)
    return cls(**kw)


def _parse_start(text: str, key: str) -> datetime:
    t = text.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(t)
    except ValueError as exc:
        raise ConfigError(
            f"{key}: expected an ISO 8601 time like 2000-01-01T00:00Z, not {text!r}"
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_config(raw: Mapping[str, object], env: Mapping[str, str] | None = None) -> Config:
    """Validate an already-parsed TOML mapping (see ``load_config``)."""
    env = os.environ if env is None else env
    unknown = set(raw) - {"output", "nobb", "dbk"}
    if unknown:
        raise ConfigError(
            f"unknown section(s): {', '.join(sorted(unknown))} (allowed: output, nobb, dbk)"
        )
    out_kw = _section(raw.get("output", {}), OutputConfig, "output", env)
    if "dir" in out_kw:
        out_kw["dir"] = out_dir(out_kw["dir"])
    if "prometheus_file" in out_kw:
        out_kw["prometheus_file"] = Path(out_kw["prometheus_file"])
    output = OutputConfig(**out_kw)
    nobb = _api(raw["nobb"], NobbConfig, "nobb", env) if "nobb" in raw else None
    dbk = _api(raw["dbk"], DbkConfig, "dbk", env) if "dbk" in raw else None
    return Config(output=output, nobb=nobb, dbk=dbk)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a TOML config file; every problem is a ``ConfigError`` naming the key."""
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(raw, env)
