"""How a source reaches its API: its section's HTTP settings, and the check before a run.

``http_settings`` maps a ``[nobb]`` / ``[dbk]`` section onto ``HttpSettings`` (limits, timeouts,
``ca_file``, ``proxy``). ``check_certificate`` opens one connection to the base URL, through the
proxy if there is one, before the run creates anything on disk: a certificate that does not
verify stops the source there (``CertificateError``, exit 2). Any other failure of the check is
left to the run, which retries it like every request.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from harvester.config import DbkConfig, NobbConfig
from harvester.engine.http import HttpClient, HttpSettings
from harvester.errors import FetchError

__all__ = ["check_certificate", "http_settings"]

log = logging.getLogger("harvester.http")


def http_settings(
    cfg: NobbConfig | DbkConfig, name: str, *, spare_connections: int = 0
) -> HttpSettings:
    """The client settings of section ``name``, with ``spare_connections`` beyond its
    concurrency."""
    return HttpSettings(
        concurrency=cfg.concurrency + spare_connections,
        connect_timeout=cfg.connect_timeout,
        first_byte_timeout=cfg.first_byte_timeout,
        read_timeout=cfg.read_timeout,
        max_body_bytes=cfg.max_body_mb << 20,
        accept_encoding=cfg.accept_encoding,
        ca_file=cfg.ca_file,
        proxy=cfg.proxy,
        name=name,
    )


async def check_certificate(cfg: NobbConfig | DbkConfig, name: str) -> None:
    """Raise ``CertificateError`` if ``cfg.base_url``'s certificate does not verify (https only).

    Plain http (loopback) needs no request. ``ConfigError`` (a bad ``SSL_CERT_FILE``, an
    unreadable ``ca_file``, a bad proxy variable) raises too; transport and status errors do
    not: the run meets them again and retries.
    """
    settings = http_settings(cfg, name)
    # The handshake is what matters: a server slow to answer HEAD must not hold the run back.
    settings = replace(settings, first_byte_timeout=min(settings.first_byte_timeout,
                                                        settings.connect_timeout + 10))  # fmt: skip
    async with HttpClient(settings, base_url=cfg.base_url) as http:
        if not cfg.base_url.lower().startswith("https:"):
            return  # the client is built all the same: a bad proxy variable stops us here
        try:
            await http.check()
        except FetchError as exc:
            log.info("%s: the certificate check did not connect (%s); the run retries", name, exc)
