"""harvester's one error tree.

Every failure the harvester reports is one of these. A foreign exception (aiohttp, OSError, lxml,
msgspec, orjson, tomllib, obstore) is translated where it is raised, by the module that makes the
call (for the disk: or by its caller in ``store/``): ``engine/http.py`` for the network (a
corrupt compressed body: ``engine/messages.py``), ``engine/tls.py`` for reading ``ca_file``,
``parse/`` for bodies (``sources/dbk_auth.py`` for the token answer), ``config_file.py`` for the
configuration, ``objstore.py`` for the object store, and for the disk ``storage.py`` (what is
read and written through a ``Location``) and each ``store/`` module that opens a file itself
(``shard_writer.py``, ``lock.py``, ``checkpoint.py``, ``output.py``), ``state_file.py`` for an
unreadable ``state.json``. Gaps in that rule: ``LocalDir.entries`` and ``LocalDir.delete``
(``storage.py``), the new run directory's ``mkdir`` (``run_state.py``) and a shard read by
``merge.py`` let an ``OSError`` other than a missing file through untranslated. ``status.py``
reports an unreadable file as a line of its report instead. ``raise ... from exc`` keeps the
cause for debugging; messages never carry a credential. The exit codes below are described for
users in ``docs/exit-codes.md``.

::

    HarvesterError                      base; ``exit_code`` tells the CLI how a run ended
    ├── ConfigError (ValueError)        bad flag, key or type, unset ${ENV}, public http → 2
    ├── AuthError                       credentials refused after one re-authentication  → 3
    ├── CertificateError                the server's TLS certificate does not verify  → 2
    ├── LockedError                     another run holds the output directory's lock  → 75
    ├── Interrupted                     SIGINT / SIGTERM drained the run  → 130
    ├── OutputError (OSError)           disk full, permission denied, corrupt shard, a store
    │                                   still failing after its retries, a lost lease → 1
    └── FetchError                      one request failed; carries ``request`` (a label, no secret)
        ├── TransportError              retryable: the bytes did not arrive whole
        │   ├── ConnectError            could not connect
        │   ├── RequestTimeout          connect, first-byte or idle-read timeout
        │   └── TruncatedBody           reset mid-body, short body, broken compressed stream
        ├── StatusError                 an HTTP status the caller did not want; carries ``status``
        │   ├── ServerError             5xx: retryable
        │   ├── RateLimited             429: retryable after ``retry_after`` seconds (may be None)
        │   ├── Unauthorized            401: handed to the source to re-authenticate
        │   └── ClientError             400, 404, other 4xx: not retried
        ├── BodyError                   the body arrived whole but is unusable; not retried...
        │   ├── BodyTooLarge            decompressed size over the cap (compression bomb)
        │   └── MalformedBody           ...except this one: bad JSON / XML / UTF-8, an HTML page,
        │                               DTD or entity declaration, record without its key
        └── PaginationError             a token that does not change, a page that repeats, a walk
                                        that restarts too often: never loop forever

``FetchError`` subclasses are failures of one request. ``engine/retry.py`` tries a request again
while its error is ``retryable`` and attempts remain; an error that outlasts them fails the
partition or window that made the request (the source records it and goes on; the run ends
incomplete, exit 1, resumable). ``AuthError`` is no ``FetchError``: it stops its source.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BodyError",
    "BodyTooLarge",
    "CertificateError",
    "ClientError",
    "ConfigError",
    "ConnectError",
    "FetchError",
    "HarvesterError",
    "Interrupted",
    "LockedError",
    "MalformedBody",
    "OutputError",
    "PaginationError",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "StateError",
    "StatusError",
    "TransportError",
    "TruncatedBody",
    "Unauthorized",
]


class HarvesterError(Exception):
    """Base of every error harvester raises; ``exit_code`` is what the CLI exits with."""

    exit_code: int = 1


class ConfigError(HarvesterError, ValueError):
    """A usage or configuration error, found before any network I/O. Names the key or flag."""

    exit_code = 2


class AuthError(HarvesterError):
    """Credentials were refused (after one re-authentication). Names which, never what they are."""

    exit_code = 3


class CertificateError(HarvesterError):
    """The server's TLS certificate did not verify; a retry cannot help, the trust store can.

    Names the host, OpenSSL's reason and the ``ca_file`` key that would fix a company CA.
    """

    exit_code = 2

    def __init__(self, message: str, *, host: str, reason: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(message)


class LockedError(HarvesterError):
    """Another run holds the lock on this output directory; this run did nothing."""

    exit_code = 75


class Interrupted(HarvesterError):
    """The run was stopped by SIGINT or SIGTERM after draining cleanly."""

    exit_code = 130


class OutputError(HarvesterError, OSError):
    """Writing or verifying output failed (disk full, permission denied, checksum mismatch)."""


class StateError(OutputError):
    """A source's ``state.json`` is unreadable and cannot be rebuilt: nothing was started.

    Names the file and the fix (a dump, which writes a new one).
    """

    exit_code = 2


class FetchError(HarvesterError):
    """One request failed. ``request`` is a human label (method, path, filters), never a secret."""

    retryable: bool = False

    def __init__(self, message: str, *, request: str = "") -> None:
        self.request = request
        super().__init__(f"{message} [{request}]" if request else message)


class TransportError(FetchError):
    """The response did not arrive whole; safe to retry."""

    retryable = True


class ConnectError(TransportError):
    """Could not open a connection."""


class RequestTimeout(TransportError):
    """A connect, first-byte or idle-read timeout expired."""


class TruncatedBody(TransportError):
    """The body ended early: a reset mid-body, a short read, or a broken compressed stream."""


class StatusError(FetchError):
    """The server answered with a status the caller cannot use as a page."""

    def __init__(self, message: str, *, status: int, request: str = "") -> None:
        self.status = status
        super().__init__(message, request=request)


class ServerError(StatusError):
    """A 5xx answer; retried with backoff."""

    retryable = True


class RateLimited(StatusError):
    """A 429 answer. ``retry_after`` is seconds from now when the server said so, else None."""

    retryable = True

    def __init__(
        self, message: str, *, status: int = 429, request: str = "", retry_after: float | None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, request=request)


class Unauthorized(StatusError):
    """A 401 answer; the source re-authenticates once before giving up with ``AuthError``."""


class ClientError(StatusError):
    """A 4xx answer other than 401 and 429; the request itself is wrong, so it is not retried."""


class BodyError(FetchError):
    """The body arrived but cannot be used. Not retried, except ``MalformedBody`` (below)."""


class BodyTooLarge(BodyError):
    """The decompressed body exceeded the configured cap."""


class MalformedBody(BodyError):
    """The body is not what the API documents (bad JSON/XML/UTF-8, an HTML page, a DTD...).

    Retried like a transport error: a body garbled in transit is worth another attempt, and
    one that is garbled every time fails its partition after the attempts run out.
    """

    retryable = True


class PaginationError(FetchError):
    """A walk made no progress: the token did not change or the same page came back."""
