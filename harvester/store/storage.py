"""Where output lives: a local directory or a prefix in a bucket, behind one small interface.

``location(x)`` turns an output directory (a ``Path``, a path string, or ``s3://bucket/prefix``)
into a ``Location``: the durable-output code (sink, checkpoint, manifest, lock, status, output
readers) reads, writes, lists and deletes through it and never asks which kind it has.

* ``LocalDir``: files on disk; every write is temp file, fsync, rename, fsync of the directory.
* ``BucketDir``: objects under a key prefix (``objstore.Bucket``, the only obstore user); a PUT
  replaces an object whole, and a shard is uploaded from a local temp file and appears only when
  its upload completes. "Directories" are key prefixes: they exist once something is under them.

Both give the same guarantee: a reader sees an object/file whole or not at all.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

from harvester.errors import ConfigError, OutputError
from harvester.store.s3url import SCHEME, split_url

if TYPE_CHECKING:
    from harvester.store.objstore import Bucket

__all__ = [
    "BucketDir",
    "LocalDir",
    "Location",
    "atomic_write",
    "fsync_dir",
    "location",
    "out_dir",
]


def out_dir(text: str) -> Path | str:
    """An ``[output] dir`` / ``--out`` value: a local ``Path``, or a checked ``s3://`` URL."""
    if "://" not in text:
        return Path(text)
    bucket, prefix = split_url(text)
    return f"{SCHEME}{bucket}/{prefix}" if prefix else f"{SCHEME}{bucket}"


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename in it survives a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via temp file, fsync and rename (OutputError on failure)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror}") from exc


class Location(ABC):
    """A directory of output: local or in a bucket. ``str()`` names it (never a credential)."""

    #: The directory on local disk, or None for a bucket prefix.
    local: Path | None = None

    @property
    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    def child(self, name: str) -> Location: ...

    def __truediv__(self, name: str) -> Location:
        return self.child(name)

    @abstractmethod
    def show(self, name: str) -> str:
        """How a file in this directory is named in messages."""

    @abstractmethod
    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None if it does not exist (OutputError if unreadable)."""

    @abstractmethod
    def write(self, name: str, data: bytes) -> None:
        """Replace the file whole: a reader sees the old content or the new, never a mix."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove the file if it is there."""

    @abstractmethod
    def entries(self) -> tuple[list[str], dict[str, float]]:
        """Subdirectory names and files (name -> modification time) right under this one."""

    @abstractmethod
    def make(self) -> None:
        """Create the directory (and parents); a no-op for a bucket prefix."""

    @abstractmethod
    def publish(self, tmp: Path, name: str) -> None:
        """Move the finished, closed local file ``tmp`` into place as ``name``, whole."""

    def exists(self, name: str) -> bool:
        return name in self.entries()[1]

    def is_dir(self) -> bool:
        """Whether there is a directory (or anything under the prefix) here."""
        dirs, files = self.entries()
        return bool(dirs or files)


class LocalDir(Location):
    """A directory on local disk."""

    def __init__(self, path: Path) -> None:
        self.local = path
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    def child(self, name: str) -> LocalDir:
        return LocalDir(self.path / name)

    def __str__(self) -> str:
        return str(self.path)

    def show(self, name: str) -> str:
        return str(self.path / name)

    def read(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise OutputError(f"cannot read {self.path / name}: {exc.strerror}") from exc

    def write(self, name: str, data: bytes) -> None:
        atomic_write(self.path / name, data)

    def delete(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    def entries(self) -> tuple[list[str], dict[str, float]]:
        dirs: list[str] = []
        files: dict[str, float] = {}
        try:
            for p in self.path.iterdir():
                if p.is_dir():
                    dirs.append(p.name)
                else:
                    files[p.name] = p.stat().st_mtime
        except FileNotFoundError:
            pass
        return dirs, files

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()

    def is_dir(self) -> bool:
        return self.path.is_dir()

    def make(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {self.path}: {exc.strerror}") from exc

    def publish(self, tmp: Path, name: str) -> None:
        os.replace(tmp, self.path / name)
        fsync_dir(self.path)


class BucketDir(Location):
    """A key prefix in a bucket (``objstore.Bucket``)."""

    def __init__(self, bucket: Bucket, key: str = "") -> None:
        self.bucket = bucket
        self.key = key

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1] if self.key else self.bucket.prefix.rsplit("/", 1)[-1]

    def child(self, name: str) -> BucketDir:
        return BucketDir(self.bucket, f"{self.key}/{name}" if self.key else name)

    def _key(self, name: str) -> str:
        return f"{self.key}/{name}" if self.key else name

    def __str__(self) -> str:
        return self.bucket.url(self.key)

    def show(self, name: str) -> str:
        return self.bucket.url(self._key(name))

    def read(self, name: str) -> bytes | None:
        found = self.bucket.get(self._key(name))
        return None if found is None else found.data

    def write(self, name: str, data: bytes) -> None:
        self.bucket.put(self._key(name), data)

    def delete(self, name: str) -> None:
        self.bucket.delete(self._key(name))

    def entries(self) -> tuple[list[str], dict[str, float]]:
        dirs, files = self.bucket.entries(self.key)
        return dirs, {name: mtime for name, (_, mtime) in files.items()}

    def make(self) -> None:
        return None

    def publish(self, tmp: Path, name: str) -> None:
        self.bucket.upload(self._key(name), tmp)
        tmp.unlink(missing_ok=True)


def location(where: Location | Path | str, *, retry_seconds: float = 30.0) -> Location:
    """The ``Location`` for an output directory, a run directory, or an ``s3://`` URL."""
    if isinstance(where, Location):
        return where
    if isinstance(where, str) and "://" in where:
        try:
            from harvester.store.objstore import Bucket
        except ImportError as exc:
            if exc.name is None or not exc.name.startswith("obstore"):
                raise
            raise ConfigError(
                f"output.dir {where}: object storage needs obstore: pip install 'harvester[s3]'"
            ) from None
        return BucketDir(Bucket(where, retry_seconds=retry_seconds))
    return LocalDir(Path(where))
