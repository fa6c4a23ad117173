"""ONIX → JSON on every core: batches of products converted here and in worker processes.

ONIX → JSON is CPU-bound (tree and dict building in Python), so the event loop splits the byte
stream at product boundaries (``onix_split.py``) and each batch runs ``onix.convert_batch``.
``workers`` counts the processes that convert, this one included: ``0`` or ``1`` converts every
batch here; ``N >= 2`` adds a pool of ``N - 1`` worker processes. The first ``_FIRST_HERE`` (2)
batches are converted here; after them a batch goes to the pool while the pool has fewer than two
batches per worker in hand (one converting, one queued, so a worker never waits for the next),
and is converted here at once otherwise. Every batch through the pool costs a hand-off (the XML
pickled there, the JSON lines back, and each worker's own start-up), which converting here does
not: with the main process as one of the ``N``, ``workers = 2`` ships about half the batches
that a pool of two did, and starts one process, not two (docs/benchmarks.md, "CPU per record").

Compiled product shapes (``onix_shapes``) travel with the batches: each batch sent carries the
shapes this process compiled since the last one was sent, each result the shapes its worker
compiled (``Shapes.handoff``, ``adopt``). A catalogue shows most of its shapes in its first
products, so the first batches are converted here: their shapes go to the worker with its first
batch, compiled once, not once in each process (~1 ms each, and the product walked twice first).

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
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from types import TracebackType

from harvester.errors import MalformedBody, TruncatedBody
from harvester.parse.onix import SHAPES, Converted, ProductError, Src, convert_batch, read_header
from harvester.parse.onix_shapes import Shapes, Shipped
from harvester.parse.onix_split import Batch, Prologue
from harvester.parse.onix_worker import HELD, convert_shared, warm

__all__ = ["Converting", "OnixConverter"]

#: A converted batch: its records, and the shapes a worker compiled for it (``{}`` here).
_Done = tuple[list[Converted], Shipped]
_FIRST_HERE = 2  # batches converted here before any goes to the pool
#: A batch being converted (``OnixConverter.submit``), for ``OnixConverter.result``.
Converting = asyncio.Future[_Done]


@contextmanager
def _held() -> Iterator[None]:
    """SIGINT and SIGTERM held back in this thread while the pool may start a worker.

    A worker inherits the signal mask of the thread that spawned it, so a signal sent to the
    process group while the worker is still importing (before ``onix_worker.warm`` ignores it)
    waits, instead of killing the worker with a traceback. Here the signal is only delayed: it
    reaches this process as soon as the mask is restored.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not on POSIX
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class OnixConverter:
    """Converts ``Batch`` es to ``(record_reference, json_line, updated)`` (module docstring)."""

    def __init__(self, workers: int, shapes: Shapes = SHAPES) -> None:
        """``shapes``: the compiled shapes of the batches converted here (this process's by
        default), traded with the workers."""
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self._shapes = shapes
        #: Worker processes beside this one (``workers - 1``; none for 0 or 1).
        self.pooled = max(0, workers - 1)
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        #: Batches handed to the pool and not yet done (``Future.done`` is thread-safe: it is
        #: true as soon as a worker's result is in, before the event loop hears of it).
        self._in_pool: set[Future[_Done]] = set()
        self._here = 0  # batches converted in this process

    def _start(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.pooled, mp_context=ctx, initializer=warm)

    async def __aenter__(self) -> OnixConverter:
        if self.pooled:
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

    def submit(self, prologue: Prologue, src: Src, batch: Batch) -> Converting:
        """Start converting ``batch``; pass the future to ``result`` (which translates errors).

        After the first ``_FIRST_HERE`` batches, the batch goes to the pool while it holds
        fewer than two batches per worker, with the shapes compiled here since the last batch
        sent; otherwise (and with no pool) it is converted here, now, and the future is already
        done. The caller bounds how many are pending (that is the backpressure on the body
        stream).
        """
        args = (prologue.root_open, prologue.root_tag, batch.data, src)
        if self._closed:
            raise RuntimeError("the converter is closed")
        if self._pool is not None and self._here >= _FIRST_HERE:
            self._in_pool = {f for f in self._in_pool if not f.done()}
            if len(self._in_pool) < 2 * self.pooled:
                return self._to_pool(args)
        self._here += 1
        fut: Converting = asyncio.get_running_loop().create_future()
        try:
            fut.set_result((convert_batch(*args, self._shapes), {}))
        except ProductError as exc:
            fut.set_exception(exc)
        return fut

    def _to_pool(self, args: tuple[bytes, bytes, bytes, Src]) -> Converting:
        # The pool spawns its workers on demand, inside submit: hence the held signals.
        assert self._pool is not None
        shipped = self._shapes.handoff()
        with _held():
            try:
                done = self._pool.submit(convert_shared, *args, shipped)
            except BrokenProcessPool:  # a worker died since the last call: one new pool
                self._restart()
                assert self._pool is not None
                done = self._pool.submit(convert_shared, *args, shipped)
        self._in_pool.add(done)
        return asyncio.wrap_future(done)

    def _restart(self) -> None:
        if self._pool is not None and not self._closed:
            old, self._pool = self._pool, self._start()
            self._in_pool = set()
            old.shutdown(wait=False, cancel_futures=True)

    async def result(self, fut: Converting, *, label: str) -> list[Converted]:
        """The batch's records in document order; ``MalformedBody`` if it cannot be read."""
        try:
            records, shipped = await fut
        except ProductError as exc:
            raise MalformedBody(f"ONIX: {exc}", request=label) from None
        except BrokenProcessPool:
            # A worker died (killed, out of memory): start a new pool; the request is retried.
            self._restart()
            raise TruncatedBody("an ONIX converter process died", request=label) from None
        if shipped:  # the shapes a worker compiled: this process need not compile them again
            self._shapes.adopt(shipped)
        return records
