"""How a source reaches its API: its section's HTTP settings, the check before a run, and
``Endpoint.send``, the one request path every request to an API takes.

``http_settings`` maps a ``[nobb]`` / ``[dbk]`` section onto ``HttpSettings`` (limits, timeouts,
``ca_file``, ``proxy``). ``check_certificate`` opens one connection to the base URL, through the
proxy if there is one, before the run creates anything on disk: a certificate that does not
verify stops the source there (``CertificateError``, exit 2). Any other failure of the check is
left to the run, which retries it like every request.

``Endpoint.send`` builds every attempt the same way: the request is prepared (a fresh token, a
page marked as asked again), counted, sent under a limiter slot, its answer's headers and status
shown to the limiter, the answer read by the caller, and the request's line logged; failures are
retried by ``call_with_retries`` (429s wait on the limiter and spend no attempt). The caller's
reader handles its API's own statuses first (a 202, a 400 on a page token, a refusal as too
many) and hands the rest to ``Endpoint.refuse``, which maps an error status to the error tree.
A 401 goes to the caller's ``unauthorized``: it raises to stop, or returns to send again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import TypeVar

from harvester.config import DbkConfig, NobbConfig
from harvester.engine.clock import Clock
from harvester.engine.http import (
    Client,
    HttpClient,
    HttpSettings,
    Request,
    Response,
    raise_for_status,
)
from harvester.engine.limiter import RateLimiter
from harvester.engine.retry import RetryPolicy, call_with_retries
from harvester.errors import FetchError, Unauthorized
from harvester.logs import log_request
from harvester.progress import Progress

__all__ = ["Answer", "Connect", "Endpoint", "check_certificate", "connector", "http_settings"]

T = TypeVar("T")

#: Opens a source's client for one run, from its settings and the manifest's ``transport``
#: report (kept up to date by the client); ``connector`` gives the default, ``HttpClient``.
Connect = Callable[[HttpSettings, dict[str, object]], AbstractAsyncContextManager[Client]]

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


def connector(base_url: str) -> Connect:
    """``HttpClient`` on ``base_url``: the client every run opens unless given another."""

    def connect(settings: HttpSettings, report: dict[str, object]) -> HttpClient:
        return HttpClient(settings, base_url=base_url, report=report)

    return connect


async def check_certificate(cfg: NobbConfig | DbkConfig, name: str) -> None:
    """Raise ``CertificateError`` if ``cfg.base_url``'s certificate does not verify (https only).

    Plain http (loopback) needs no request. ``ConfigError`` (a bad ``SSL_CERT_FILE``, an
    unreadable ``ca_file``, a bad proxy variable) raises too; transport and status errors do
    not: the run meets them again and retries.
    """
    settings = http_settings(cfg, name)
    # The handshake is what matters: a server slow to answer HEAD must not hold the run back.
    settings = replace(
        settings, first_byte_timeout=min(settings.first_byte_timeout, settings.connect_timeout + 10)
    )
    async with HttpClient(settings, base_url=cfg.base_url) as http:
        if not cfg.base_url.lower().startswith("https:"):
            return  # the client is built all the same: a bad proxy variable stops us here
        try:
            await http.check()
        except FetchError as exc:
            log.info("%s: the certificate check did not connect (%s); the run retries", name, exc)


@dataclass(frozen=True, slots=True)
class Answer:
    """One attempt's answer as the caller's reader gets it."""

    request: Request
    response: Response
    first_byte: float  #: seconds from sending (the limiter's slot taken) to the headers


@dataclass(slots=True, kw_only=True)
class Endpoint:
    """One API as a source sends to it: its client, its limiter, the retry policy, the clock."""

    source: str  #: the section's name, in each request's log line
    http: Client
    limiter: RateLimiter
    clock: Clock
    policy: RetryPolicy
    log: logging.Logger
    log_requests: bool = True  #: one INFO line per request (``logs.log_request``)

    async def send(
        self,
        prepare: Callable[[], Awaitable[Request]],
        read: Callable[[Answer], Awaitable[T]],
        *,
        progress: Progress | None,
        what: str,
        partition: str | None = None,
        detail: Callable[[], str] | None = None,
        numbered: bool = False,
        unauthorized: Callable[[Unauthorized], None] | None = None,
    ) -> T:
        """``read``'s result for the first attempt that succeeds (module docstring).

        ``prepare`` gives each attempt's request; ``what`` names the request in retry warnings;
        ``detail`` and ``numbered`` (the attempt's number) extend its log line. Without
        ``unauthorized`` a 401 raises ``Unauthorized``; the error that ends the retries
        propagates unchanged.
        """
        attempts = 0

        async def attempt() -> T:
            nonlocal attempts
            attempts += 1
            request = await prepare()
            if progress is not None:
                progress.requests += 1
            t0 = self.clock.monotonic()
            status = 0
            try:
                async with self.limiter.slot():
                    t0 = self.clock.monotonic()  # the request's own time, not the queue's
                    async with self.http.stream(request) as resp:
                        first_byte = self.clock.monotonic() - t0
                        status = resp.status
                        self.limiter.observe(resp.headers, resp.status)
                        return await read(Answer(request, resp, first_byte))
            finally:
                self._log_attempt(
                    request, partition, status, t0, attempts if numbered else None, detail
                )

        def on_retry(n: int, exc: FetchError, delay: float) -> None:
            if progress is not None:
                progress.retries += 1
            self.log.warning("%s: retry %d in %.1fs after %s", what, n, delay, exc)

        while True:
            try:
                return await call_with_retries(
                    attempt,
                    policy=self.policy,
                    clock=self.clock,
                    limiter=self.limiter,
                    on_retry=on_retry,
                )
            except Unauthorized as exc:
                if unauthorized is None:
                    raise
                unauthorized(exc)  # returned: the credentials were renewed, send again

    def _log_attempt(
        self,
        request: Request,
        partition: str | None,
        status: int,
        t0: float,
        attempt: int | None,
        detail: Callable[[], str] | None,
    ) -> None:
        """The attempt's log line (``logs.log_request``), when requests are logged."""
        if self.log_requests:
            log_request(
                self.log,
                source=self.source,
                partition=partition,
                request=request.label,
                status=status,
                seconds=self.clock.monotonic() - t0,
                attempt=attempt,
                detail=detail() if detail is not None else "",
            )

    async def refuse(self, answer: Answer, progress: Progress | None) -> None:
        """Raise the error an error status maps to (a 429 counted as throttled); below 400,
        return."""
        resp = answer.response
        if resp.status < 400:
            return
        if resp.status == 429 and progress is not None:
            progress.throttled += 1
        raise_for_status(resp, answer.request, await resp.read(2048))
