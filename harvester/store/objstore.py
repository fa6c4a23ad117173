"""The object store seam: the only module that imports ``obstore``.

``Bucket(url, retry_seconds=...)`` opens ``s3://bucket/prefix`` with the credentials and endpoint
of the standard AWS environment only (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``; without keys, obstore's usual chain:
web identity, container or instance credentials). Nothing comes from the TOML. An ``http://``
endpoint is allowed only on loopback (the project's plain-HTTP rule); TLS is always verified.

Every obstore exception is translated here, once: a missing object is ``None`` (``get``) or
ignored (``delete``), a failed condition is ``False`` (``create``/``replace``), anything else is
an ``OutputError`` naming the ``s3://`` URL of the object. Transient failures (5xx, refused or
dropped connections, timeouts) are retried by obstore with exponential backoff for up to
``retry_seconds`` before they become that ``OutputError``. Messages carry the first line of the
store's reason with any credential value blanked: never a key, token or signature.

Shards are uploaded from a local file with a streaming multipart upload: the object appears
only when the upload completes; an upload that fails, or a process killed in the middle, leaves
no object (S3 keeps the uploaded parts of an abandoned upload out of every listing; a bucket
lifecycle rule ``AbortIncompleteMultipartUpload`` reclaims their space).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    NotFoundError,
    NotSupportedError,
    PreconditionError,
)
from obstore.store import S3Store

from harvester.config import is_loopback
from harvester.errors import ConfigError, OutputError
from harvester.store.s3url import SCHEME, split_url

__all__ = ["Bucket", "Version"]

_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
#: Parts of a multipart upload: the S3 minimum is 5 MiB; 8 MiB keeps part counts low.
PART_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class Version:
    """An object's bytes and the e-tag a conditional replace must match."""

    data: bytes
    e_tag: str


def _client(env: Mapping[str, str], retry_seconds: float) -> dict[str, Any]:
    endpoint = env.get("AWS_ENDPOINT_URL", "").strip()
    kw: dict[str, Any] = {}
    client: dict[str, Any] = {"allow_http": False, "connect_timeout": timedelta(seconds=10)}
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("AWS_ENDPOINT_URL: expected an http(s)://host[:port] URL")
        if parts.scheme == "http":
            if not is_loopback(parts.hostname):
                raise ConfigError(
                    "AWS_ENDPOINT_URL: plain http is allowed only to loopback; use https"
                )
            client["allow_http"] = True
        kw["endpoint"] = endpoint
    for name in _ENV:
        if env.get(name):
            kw[name[4:].lower()] = env[name]
    kw["region"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    backoff = {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=5),
        "base": 2,
    }
    kw["retry_config"] = {
        "max_retries": 1000,
        "backoff": backoff,
        "retry_timeout": timedelta(seconds=retry_seconds),
    }
    kw["client_options"] = client
    return kw


class Bucket:
    """One ``s3://bucket/prefix``; keys below are relative to the prefix (``nobb/state.json``).

    Methods block (obstore releases the GIL while they wait): callers on the event loop run
    them in a thread. ``str()`` is the URL, never a credential.
    """

    def __init__(
        self, url: str, *, retry_seconds: float = 120.0, env: Mapping[str, str] | None = None
    ) -> None:
        self.bucket, self.prefix = split_url(url)
        env = os.environ if env is None else env
        kw = _client(env, retry_seconds)
        self._secrets = [env[n] for n in _ENV if env.get(n)]
        self._store = S3Store(self.bucket, prefix=self.prefix or None, **kw)
        #: Called before every write: the run lock's check (``lease.py``) that it still holds.
        self.guard: Callable[[], None] | None = None

    def _guard(self, guarded: bool) -> None:
        if guarded and self.guard is not None:
            self.guard()

    def url(self, key: str = "") -> str:
        base = f"{SCHEME}{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        return f"{base}/{key}" if key else base

    def __str__(self) -> str:
        return self.url()

    def _error(self, key: str, doing: str, exc: Exception) -> OutputError:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        for secret in self._secrets:
            reason = reason.replace(secret, "***")
        return OutputError(f"cannot {doing} {self.url(key)}: {reason[:300]}")

    def get(self, key: str) -> Version | None:
        """The object's bytes and e-tag, or None if there is none."""
        try:
            result = obstore.get(self._store, key)
            data = bytes(result.bytes())
        except (NotFoundError, FileNotFoundError):
            return None
        except Exception as exc:
            raise self._error(key, "read", exc) from None
        return Version(data, str(result.meta.get("e_tag") or ""))

    def put(self, key: str, data: bytes) -> None:
        """Write the whole object at once (S3 PUT is atomic: the old object or the new one)."""
        self._guard(True)
        try:
            obstore.put(self._store, key, data, use_multipart=False)
        except Exception as exc:
            raise self._error(key, "write", exc) from None

    def upload(self, key: str, path: Path) -> None:
        """Stream a local file into ``key`` (multipart above one part); visible only once whole."""
        self._guard(True)
        try:
            obstore.put(self._store, key, path, chunk_size=PART_BYTES, max_concurrency=4)
        except Exception as exc:
            raise self._error(key, "upload", exc) from None

    def create(self, key: str, data: bytes) -> str | None:
        """Create ``key`` only if absent (conditional create); its e-tag, or None if it exists."""
        try:
            return str(obstore.put(self._store, key, data, mode="create")["e_tag"] or "")
        except (AlreadyExistsError, PreconditionError):
            return None
        except NotSupportedError as exc:
            raise self._error(key, "create (conditional writes unsupported)", exc) from None
        except Exception as exc:
            raise self._error(key, "create", exc) from None

    def replace(self, key: str, data: bytes, e_tag: str, *, guarded: bool = True) -> str | None:
        """Overwrite ``key`` only if it still has ``e_tag``; the new e-tag, or None if it moved."""
        self._guard(guarded)
        try:
            result = obstore.put(self._store, key, data, mode={"e_tag": e_tag})
        except (AlreadyExistsError, PreconditionError, NotFoundError, FileNotFoundError):
            return None
        except Exception as exc:
            raise self._error(key, "replace", exc) from None
        return str(result["e_tag"] or "")

    def delete(self, key: str, *, guarded: bool = True) -> None:
        """Delete ``key``; a missing object is fine."""
        self._guard(guarded)
        try:
            obstore.delete(self._store, key)
        except (NotFoundError, FileNotFoundError):
            return
        except Exception as exc:
            raise self._error(key, "delete", exc) from None

    def entries(self, key: str) -> tuple[list[str], dict[str, tuple[int, float]]]:
        """The "directories" and objects (name: size, mtime) right under ``key``."""
        try:
            found = obstore.list_with_delimiter(self._store, f"{key}/" if key else None)
        except (NotFoundError, FileNotFoundError):
            return [], {}
        except Exception as exc:
            raise self._error(key, "list", exc) from None
        dirs = [p.rstrip("/").rsplit("/", 1)[-1] for p in found["common_prefixes"]]
        files = {
            str(o["path"]).rsplit("/", 1)[-1]: (int(o["size"]), o["last_modified"].timestamp())
            for o in found["objects"]
        }
        return dirs, files
