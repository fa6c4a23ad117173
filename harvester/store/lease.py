"""The run lock in a bucket: a lock object with a lease, taken by conditional create.

A bucket has no ``flock``, and a SIGKILLed run cannot delete anything, so the lock is an object
``<prefix>/<source>/.lock`` holding JSON ``{"holder", "token", "expires"}``:

* taking it is a conditional create (S3 ``If-None-Match: *``, obstore ``PutMode.Create``): of two
  runs starting together exactly one creates it; the other reads the holder and fails at once
  with ``LockedError`` (exit 75), naming the holder and when the lease expires;
* a thread renews the lease every quarter of ``lease_seconds`` by a conditional replace
  (``If-Match`` the e-tag it last wrote), so a live run's lock never expires;
* a lock whose lease has expired belonged to a run that died (SIGKILL, lost machine): the next
  run takes it over with a conditional replace of exactly the e-tag it read, so of two
  successors only one wins;
* a holder that cannot renew (the store is unreachable for longer than the lease allows, or its
  e-tag moved because a successor took over) has lost the lock: every later write of the run
  fails with ``OutputError`` (the run ends incomplete, exit 1) instead of writing beside the
  new holder;
* a clean exit deletes the lock object.

Expiry is wall-clock time of the writing machine: hosts sharing a prefix need clocks within a
fraction of the lease (NTP is plenty for the default 60 s). A store without conditional writes
refuses the create (``OutputError`` naming the lock, nothing written); one that silently ignores
the conditions is caught by reading the lock back after every create and renewal and
comparing the token: an overlap then stops the later writer within one renewal, but cannot be
excluded outright, so on such a store schedule one run per prefix.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime

import orjson

from harvester.errors import LockedError, OutputError
from harvester.store.storage import BucketDir

__all__ = ["LeaseLock", "lease_holder"]

LOCK = ".lock"
log = logging.getLogger("harvester.lock")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(data: bytes) -> dict[str, object]:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def lease_holder(source_dir: BucketDir, now: float | None = None) -> str | None:
    """Who holds the lease ("pid N on HOST since T"), or None when it is free or expired."""
    found = source_dir.bucket.get(source_dir.child(LOCK).key)
    if found is None:
        return None
    body = _parse(found.data)
    expires = body.get("expires")
    if isinstance(expires, (int, float)) and expires <= (time.time() if now is None else now):
        return None
    return str(body.get("holder") or "another run")


class LeaseLock:
    """``with LeaseLock(source_dir, lease_seconds):`` holds the bucket lock (module docstring)."""

    def __init__(self, source_dir: BucketDir, lease_seconds: float = 60.0) -> None:
        self.bucket = source_dir.bucket
        self.key = source_dir.child(LOCK).key
        self.url = self.bucket.url(self.key)
        self.lease = lease_seconds
        self.token = uuid.uuid4().hex
        since = _iso(time.time())
        self.holder = f"pid {os.getpid()} on {socket.gethostname()} since {since}"
        self._e_tag = ""
        self._expires = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> tuple[bytes, float]:
        expires = time.time() + self.lease
        body = {
            "holder": self.holder,
            "token": self.token,
            "expires": expires,
            "expires_at": _iso(expires),
        }
        return orjson.dumps(body), expires

    def _confirm(self) -> None:
        found = self.bucket.get(self.key)
        if found is None or _parse(found.data).get("token") != self.token:
            raise LockedError(f"{self.url}: another run wrote the lock at the same moment")
        self._e_tag = found.e_tag or self._e_tag

    def __enter__(self) -> LeaseLock:
        for _ in range(3):  # the lock can vanish between our create and our read: try again
            data, expires = self._body()
            e_tag = self.bucket.create(self.key, data)
            if e_tag is None:
                found = self.bucket.get(self.key)
                if found is None:
                    continue
                body = _parse(found.data)
                until = body.get("expires")
                if isinstance(until, (int, float)) and until > time.time():
                    raise LockedError(
                        f"{self.url} is held by {body.get('holder') or 'another run'} (lease "
                        f"until {_iso(until)}): another run is using this output prefix"
                    )
                e_tag = self.bucket.replace(self.key, data, found.e_tag)
                if e_tag is None:
                    raise LockedError(f"{self.url}: another run took over the expired lock first")
                log.warning("%s: took over the expired lock of %s", self.url, body.get("holder"))
            self._e_tag, self._expires = e_tag, expires
            self._confirm()
            break
        else:
            raise LockedError(f"{self.url}: the lock keeps changing hands; not started")
        self.bucket.guard = self.check
        self._thread = threading.Thread(target=self._renew_loop, name="lease", daemon=True)
        self._thread.start()
        return self

    def check(self) -> None:
        """Raise OutputError once the lease is lost: nothing may be written after that."""
        if self._lost is None and time.time() >= self._expires:
            self._lost = f"the lease expired at {_iso(self._expires)} without a renewal"
        if self._lost is not None:
            raise OutputError(f"{self.url}: lost the run lock ({self._lost}); stopping")

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease / 4):
            if self._lost is not None:
                return
            try:
                data, expires = self._body()
                e_tag = self.bucket.replace(self.key, data, self._e_tag, guarded=False)
                if e_tag is None:
                    self._lost = "another run replaced it"
                    return
                self._e_tag, self._expires = e_tag, expires
                self._confirm()
            except LockedError:
                self._lost = "another run replaced it"
                return
            except OutputError as exc:  # the store is away: keep trying until the lease ends
                log.warning("%s: cannot renew the lease: %s", self.url, exc)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        stuck = False
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            stuck = self._thread.is_alive()  # a renewal still retrying: the store is away
            self._thread = None
        self.bucket.guard = None
        if stuck:
            log.warning("%s: store unreachable; the lock expires by itself", self.url)
        elif self._lost is None:
            try:
                found = self.bucket.get(self.key)
                if found is not None and _parse(found.data).get("token") == self.token:
                    self.bucket.delete(self.key, guarded=False)
            except OutputError as exc:
                log.warning("%s: lock not deleted (%s); it expires by itself", self.url, exc)
