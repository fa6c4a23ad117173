"""Config: the example file is complete and valid; bad input is a ConfigError naming the key."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harvester.config import (
    Config,
    DbkConfig,
    NobbConfig,
    OutputConfig,
    Secret,
    parse_rate,
)
from harvester.config_file import load_config, parse_config
from harvester.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ENV = {"NOBB_USERNAME": "nu", "NOBB_PASSWORD": "np", "DBK_USERNAME": "du", "DBK_PASSWORD": "dp"}


def _minimal(**extra: object) -> dict[str, object]:
    nobb: dict[str, object] = {"username": "u", "password": "p", **extra}
    return {"nobb": nobb}


def test_example_config_loads_with_documented_defaults() -> None:
    """config.example.toml parses and equals the dataclass defaults plus its credentials."""
    cfg = load_config(ROOT / "config.example.toml", env=ENV)
    assert cfg.nobb == NobbConfig(username=Secret("nu"), password=Secret("np"))
    assert cfg.dbk == DbkConfig(username=Secret("du"), password=Secret("dp"))
    assert cfg.output == OutputConfig()


def test_example_config_documents_every_key() -> None:
    """Every config key of every section appears in config.example.toml (commented or not)."""
    text = (ROOT / "config.example.toml").read_text()
    for section, cls in (("output", OutputConfig), ("nobb", NobbConfig), ("dbk", DbkConfig)):
        body = text.split(f"[{section}]", 1)[1].split("\n[", 1)[0]
        keys = set(re.findall(r"^#?\s*([a-z_0-9]+)\s*=", body, re.M))
        assert {f.name for f in fields(cls)} <= keys, section


def test_missing_env_variable_is_named() -> None:
    """An unset ${NAME} stops with exit 2 naming both the key and the variable."""
    raw = tomllib.loads('[nobb]\nusername = "${NOBB_USERNAME}"\npassword = "${NOBB_PASSWORD}"\n')
    with pytest.raises(ConfigError, match=r"nobb.password: environment variable NOBB_PASSWORD"):
        parse_config(raw, env={"NOBB_USERNAME": "x"})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"nobb": {"username": "u", "password": "p", "pagesize": 5}},
            r"nobb.pagesize: unknown key",
        ),
        (_minimal(page_size="10"), r"nobb.page_size: expected an integer, got str"),
        (_minimal(page_size=10001), r"nobb.page_size: expected 1..10000"),
        (_minimal(two_ended=1), r"nobb.two_ended: expected true or false, got int"),
        (_minimal(concurrency=True), r"nobb.concurrency: expected an integer, got a boolean"),
        (_minimal(base_url="http://example.com"), r"nobb.base_url: plain http is allowed only"),
        (_minimal(base_url="https://u:p@example.com"), r"nobb.base_url: put credentials"),
        (_minimal(rate_limit="fast"), r"nobb.rate_limit: expected \"auto\", \"0\" or a rate"),
        ({"nobb": {"username": "u"}}, r"nobb.password: required"),
        ({"output": {"compression": "lz4"}}, r"output.compression: expected gzip, none or zstd"),
        ({"extra": {}}, r"unknown section\(s\): extra"),
        ({"dbk": {"username": "u", "password": "p", "start": "yesterday"}}, r"dbk.start"),
        ({"dbk": {"username": "u", "password": "p", "product_ids": ["123"]}}, r"13-digit EAN"),
        ({"dbk": {"username": "u", "password": "p", "filters_in": "form"}}, r"dbk.filters_in"),
    ],
)
def test_bad_values_name_their_key(raw: dict[str, object], message: str) -> None:
    """Each kind of bad input gives a ConfigError whose message names the offending key."""
    with pytest.raises(ConfigError, match=message) as info:
        parse_config(raw, env={})
    assert info.value.exit_code == 2


def test_http_to_loopback_is_allowed() -> None:
    """Plain http is accepted for 127.0.0.1, ::1 and localhost (the simulator)."""
    for host in ("127.0.0.1:8080", "[::1]:9", "localhost"):
        cfg = parse_config(_minimal(base_url=f"http://{host}"), env={})
        assert cfg.nobb is not None and cfg.nobb.base_url == f"http://{host}"


def test_secrets_never_print_and_are_not_in_the_digest() -> None:
    """Secrets print as *** and the config digest ignores their values."""
    a = parse_config({"nobb": {"username": "u", "password": "marker-secret-1"}}, env={})
    b = parse_config({"nobb": {"username": "u", "password": "marker-secret-2"}}, env={})
    assert "marker-secret" not in repr(a)
    assert a.digest() == b.digest()
    assert a.digest() != parse_config(_minimal(page_size=5), env={}).digest()


def test_password_file_must_be_private(tmp_path: Path) -> None:
    """password_file is read when mode 0600 and refused when others can read it."""
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    os.chmod(secret, 0o644)
    raw = {"dbk": {"username": "u", "password_file": str(secret)}}
    with pytest.raises(ConfigError, match=r"dbk.password_file: .* \(chmod 600\)"):
        parse_config(raw, env={})
    os.chmod(secret, 0o600)
    cfg = parse_config(raw, env={})
    assert cfg.dbk is not None and cfg.dbk.password.reveal() == "from-file"


def test_rates_parse() -> None:
    """Rate strings in their usual spellings become (max_rate, period seconds)."""
    assert parse_rate("600/60s", key="k") == (600.0, 60.0)
    assert parse_rate("10/s", key="k") == (10.0, 1.0)
    assert parse_rate("120/min", key="k") == (120.0, 60.0)
    assert parse_rate("0", key="k") == (0.0, 1.0)


def test_dbk_start_and_empty_config() -> None:
    """start accepts a Z suffix; an empty file gives default output and no sources."""
    cfg = parse_config({"dbk": {"username": "u", "password": "p", "start": "2010-05-01T00:00Z"}})
    assert cfg.dbk is not None and cfg.dbk.start == datetime(2010, 5, 1, tzinfo=UTC)
    assert parse_config({}, env={}) == Config()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is a ConfigError naming the path."""
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_rate_limit_auto_is_the_default_and_rates_stay_ceilings() -> None:
    """rate_limit defaults to "auto" (no ceiling); "N/Ts" is a ceiling, "0" none."""
    assert NobbConfig(username=Secret("u"), password=Secret("p")).rate is None
    assert DbkConfig(username=Secret("u"), password=Secret("p")).rate_limit == "auto"
    cfg = NobbConfig(username=Secret("u"), password=Secret("p"), rate_limit="600/60s")
    assert cfg.rate == (600.0, 60.0)
    assert NobbConfig(username=Secret("u"), password=Secret("p"), rate_limit="0").rate is None
