"""An ``s3://bucket/prefix`` URL: its scheme and its parts, checked.

Both ``storage.py`` (which reads ``--out`` and ``[output] dir``) and ``objstore.py`` (which opens
the bucket) take the URL apart here, so neither imports the other at module level.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from harvester.errors import ConfigError

__all__ = ["SCHEME", "split_url"]

SCHEME = "s3://"


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``; ConfigError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ConfigError(f"output.dir: {url!r}: the only URLs supported are s3://bucket/prefix")
    if not parts.netloc or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"output.dir: {url!r}: expected s3://bucket/prefix (no user or query)")
    prefix = parts.path.strip("/")
    if prefix and any(seg in ("", ".", "..") for seg in prefix.split("/")):
        raise ConfigError(f"output.dir: {url!r}: empty, '.' or '..' path segment")
    return parts.netloc, prefix
