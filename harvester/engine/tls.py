"""The client's TLS context: verification always on, TLS 1.2 or newer, the system trust store.

``client_context(ca_file)`` starts from the system's trust store, OpenSSL's default CA file and
directory, where ``SSL_CERT_FILE`` replaces the file and ``SSL_CERT_DIR`` the directory when set
(as for OpenSSL, curl and Python), and adds the PEM bundle ``ca_file`` (a company CA that
re-signs TLS) on top. Nothing turns verification or
host name checks off. ``verify_reason`` words a failed verification the way OpenSSL does.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from harvester.errors import ConfigError

__all__ = ["client_context", "verify_reason"]


def _check_env(env: Mapping[str, str]) -> None:
    """A set ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` that names nothing is a mistake worth naming."""
    cafile, capath = env.get("SSL_CERT_FILE"), env.get("SSL_CERT_DIR")
    if cafile and not os.path.isfile(cafile):
        raise ConfigError(f"SSL_CERT_FILE: {cafile} is not a readable file")
    if capath and not all(os.path.isdir(p) for p in capath.split(os.pathsep) if p):
        raise ConfigError(f"SSL_CERT_DIR: {capath} is not a readable directory")


def client_context(
    ca_file: Path | None = None, *, key: str = "ca_file", env: Mapping[str, str] | None = None
) -> ssl.SSLContext:
    """A verifying client context: the system store (or SSL_CERT_FILE/DIR) plus ``ca_file``.

    Raises ``ConfigError`` naming ``key`` when ``ca_file`` cannot be read or holds no
    certificate, and naming the variable when ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` is wrong.
    """
    env = os.environ if env is None else env
    _check_env(env)
    # Loading the system store costs ~50 ms of CPU: a run's clients (the certificate check, the
    # run itself) share one context per trust configuration. ConfigErrors are never cached.
    return _context(ca_file, key, env.get("SSL_CERT_FILE") or None, env.get("SSL_CERT_DIR") or None)


@functools.lru_cache(maxsize=8)
def _context(
    ca_file: Path | None, key: str, cafile: str | None, capath: str | None
) -> ssl.SSLContext:
    env = {"SSL_CERT_FILE": cafile or "", "SSL_CERT_DIR": capath or ""}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile is None and capath is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:  # what OpenSSL does with the variables, read from ``env`` rather than the process
        default = ssl.get_default_verify_paths()
        if cafile is None and os.path.isfile(default.openssl_cafile):
            cafile = default.openssl_cafile
        if capath is None and os.path.isdir(default.openssl_capath):
            capath = default.openssl_capath
        try:
            if cafile is not None or capath is not None:
                context.load_verify_locations(cafile=cafile, capath=capath)
        except ssl.SSLError as exc:
            name = "SSL_CERT_FILE" if env.get("SSL_CERT_FILE") else "SSL_CERT_DIR"
            raise ConfigError(f"{name}: cannot load {env.get(name)}: {exc.reason}") from None
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
