"""The client's TLS context: verification always on, TLS 1.2 or newer, the system trust store.

``client_context(ca_file)`` starts from the system's trust store, which OpenSSL reads from
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when they are set (instead of its built-in paths), and adds
the PEM bundle ``ca_file`` (a company CA that re-signs TLS) on top. Nothing turns verification or
host name checks off. ``verify_reason`` words a failed verification the way OpenSSL does.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from harvester.errors import ConfigError

__all__ = ["client_context", "verify_reason"]


def _check_env(env: Mapping[str, str]) -> None:
    """A set ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` that names nothing is a mistake worth naming."""
    for name, want in (("SSL_CERT_FILE", os.path.isfile), ("SSL_CERT_DIR", os.path.isdir)):
        value = env.get(name)
        if value and not all(want(p) for p in value.split(os.pathsep) if p):
            kind = "file" if name == "SSL_CERT_FILE" else "directory"
            raise ConfigError(f"{name}: {value} is not a readable {kind}")


def client_context(
    ca_file: Path | None = None, *, key: str = "ca_file", env: Mapping[str, str] | None = None
) -> ssl.SSLContext:
    """A verifying client context: the system store (or SSL_CERT_FILE/DIR) plus ``ca_file``.

    Raises ``ConfigError`` naming ``key`` when ``ca_file`` cannot be read or holds no
    certificate, and naming the variable when ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` is wrong.
    """
    _check_env(os.environ if env is None else env)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if ca_file is not None:
        try:
            text = ca_file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a PEM text file"
            raise ConfigError(f"{key}: cannot read {ca_file}: {reason}") from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ConfigError(f"{key}: {ca_file} holds no PEM certificate (BEGIN CERTIFICATE)")
        try:
            context.load_verify_locations(cadata=text)
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            raise ConfigError(f"{key}: {ca_file} is not a valid PEM bundle ({reason})") from None
    return context


def verify_reason(exc: BaseException) -> str:
    """``certificate verify failed: <OpenSSL's reason>`` for a verification error."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    return str(exc) or type(exc).__name__
