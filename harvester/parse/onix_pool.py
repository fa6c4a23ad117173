"""ONIX → JSON on every core: batches of products converted in worker processes.

ONIX → JSON is CPU-bound (tree and dict building in Python), so the event loop only splits the
byte stream at product boundaries (``onix_split.py``) and ships each batch to a process pool,
which runs ``onix.convert_batch``. ``workers = 0`` or ``1`` converts in the event loop's process
instead: a single worker process would only add the hand-off of every batch (pickling it there,
the JSON lines back, its own start-up), which costs more CPU than it overlaps
(docs/benchmarks.md, "CPU per record"); a pool starts from 2 workers.

``OnixConverter`` is an async context manager: the pool starts on entry (``spawn``: no fork of a
process that has threads) and stops on ``aclose()`` (idempotent), cancelling queued batches.
Worker failures come back as ``MalformedBody`` naming the request; a worker that died
(``BrokenProcessPool``) restarts the pool and fails the batch as a retryable ``TruncatedBody``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from types import TracebackType

from harvester.errors import MalformedBody, TruncatedBody
from harvester.parse.onix import Converted, ProductError, Src, convert_batch, read_header
from harvester.parse.onix_split import Batch, Prologue

__all__ = ["OnixConverter"]

_HELD = {signal.SIGINT, signal.SIGTERM}


def _warm() -> None:
    """Worker initializer: ignore SIGINT and SIGTERM, import the converter before any batch.

    A terminal's Ctrl-C, and systemd's SIGTERM, reach the whole process group; the main process
    drains the run and stops the pool itself, so a worker must not die of them mid-batch. (If
    the main process dies, a worker reads end-of-file on its queue and exits.)
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # held since the spawn (_held): now ignored, let go
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    from harvester.parse import onix  # noqa: F401


@contextmanager
def _held() -> Iterator[None]:
    """SIGINT and SIGTERM held back in this thread while the pool may start a worker.

    A worker inherits the signal mask of the thread that spawned it, so a signal sent to the
    process group while the worker is still importing (before ``_warm`` ignores it) waits,
    instead of killing the worker with a traceback. Here the signal is only delayed: it reaches
    this process as soon as the mask is restored.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not on POSIX
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class OnixConverter:
    """Converts ``Batch`` es to ``(record_reference, json_line, updated)`` (module docstring)."""

    def __init__(self, workers: int) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    def _start(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_warm)

    async def __aenter__(self) -> OnixConverter:
        if self.workers > 1:
            self._pool = self._start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    @staticmethod
    def header(prologue: Prologue, *, label: str) -> Src:
        """The message's release, tag style, namespace and sent time (parsed here: it is small)."""
        try:
            return read_header(prologue.document)
        except ProductError as exc:
            raise MalformedBody(f"ONIX message: {exc}", request=label) from None

    def submit(self, prologue: Prologue, src: Src, batch: Batch) -> asyncio.Future[list[Converted]]:
        """Start converting ``batch``; pass the future to ``result`` (which translates errors).

        The caller bounds how many are pending (that is the backpressure on the body stream).
        """
        args = (prologue.root_open, prologue.root_tag, batch.data, src)
        loop = asyncio.get_running_loop()
        if self._pool is None:
            if self._closed:
                raise RuntimeError("the converter is closed")
            fut: asyncio.Future[list[Converted]] = loop.create_future()
            try:
                fut.set_result(convert_batch(*args))
            except ProductError as exc:
                fut.set_exception(exc)
            return fut
        # The pool spawns its workers on demand, inside submit: hence the held signals.
        with _held():
            try:
                return loop.run_in_executor(self._pool, convert_batch, *args)
            except BrokenProcessPool:  # a worker died since the last call: one new pool
                self._restart()
                return loop.run_in_executor(self._pool, convert_batch, *args)

    def _restart(self) -> None:
        if self._pool is not None and not self._closed:
            old, self._pool = self._pool, self._start()
            old.shutdown(wait=False, cancel_futures=True)

    async def result(self, fut: asyncio.Future[list[Converted]], *, label: str) -> list[Converted]:
        """The batch's records in document order; ``MalformedBody`` if it cannot be read."""
        try:
            return await fut
        except ProductError as exc:
            raise MalformedBody(f"ONIX: {exc}", request=label) from None
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start a new pool; the request is retried.
            self._restart()
            raise TruncatedBody("an ONIX converter process died", request=label) from None
