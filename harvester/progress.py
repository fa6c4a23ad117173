"""Run progress: the counters a source bumps, and the plain line that reports them.

``Progress`` is a plain bag of counters (no I/O, no tasks): records written, partitions done of
total, bytes received, requests, 429s, retries, and what the source knows of its end (NOBB's
planned ``x-totalHits``, DBK's time range and how much of it finished windows cover). From them
it derives the share done, the rates and an ETA; ``policy`` reads the rate policy in force off
the source's limiter report. When the source ends, the run layer sets its ``summary``: its rates
freeze there.

``Reporter`` is the plain reporter for what is not a terminal (cron, CI, a pipe): every
``interval`` seconds one line naming the sources still running, or with ``--log-format json``
one JSON object per source. The live display on a terminal is ``display.py``; ``display.choose``
picks between them. Nothing here ever sees a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TextIO

import orjson

from harvester.plural import counted

__all__ = ["Progress", "ProgressMode", "Reporter", "duration", "policy_in_force"]

ProgressMode = Literal["auto", "always", "never"]


def policy_in_force(report: Mapping[str, object], *, short: bool = False) -> str:
    """The rate policy a limiter follows, in a few words, from its ``report()`` (the manifest's
    ``rate_limit`` object): ``30/10s fixed`` as announced, ``learned 20/2s`` where 429s taught
    it (``learned_from``), ``none announced``; a configured ceiling follows unless ``short``.
    Empty before the first request.

    >>> policy_in_force({"limit": 30, "window": 10.0, "kind": "fixed", "requests": 3})
    '30/10s fixed'
    >>> policy_in_force({"limit": 20, "window": 2.0, "learned_from": "429", "requests": 9})
    'learned 20/2s'
    >>> policy_in_force({"learned_from": "429", "limit": None, "rate": 9.46, "requests": 9})
    'learned 9.5/s adaptive'
    >>> policy_in_force({"kind": None, "ceiling": "10/1s", "requests": 1})
    'none announced, ceiling 10/1s'
    """
    learned, kind = report.get("learned_from"), report.get("kind")
    limit, window = report.get("limit"), report.get("window")
    rate = f"{limit if limit is not None else '?'}/"
    if isinstance(window, int | float) and window:  # to the reset's resolution: whole seconds
        rate += f"{round(window) if window >= 5 else round(window, 1):g}s"
    else:
        rate += "?s"
    pace = report.get("rate")
    if learned == "429" and limit is None and isinstance(pace, int | float):
        text = f"learned {pace:.1f}/s adaptive"  # no window fitted the refusals (yet)
    elif learned == "429":
        text = f"learned {rate}"
    elif kind is not None or learned == "headers":
        text = f"{rate} {kind or ''}".rstrip()
    elif report.get("requests"):
        text = "none announced"
    else:
        return ""
    ceiling = report.get("ceiling")
    return text if short or not ceiling else f"{text}, ceiling {ceiling}"


def duration(seconds: float) -> str:
    """A short duration for an ETA.

    >>> duration(62), duration(3725), duration(0.4)
    ('1m02s', '1h02m', '0m00s')
    """
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


@dataclass(slots=True)
class Progress:
    """Counters of one source's run; the source and the engine increment them."""

    source: str
    records: int = 0
    duplicates: int = 0
    partitions_done: int = 0
    partitions_total: int = 0
    partitions_failed: int = 0
    bytes_in: int = 0
    requests: int = 0
    throttled: int = 0
    retries: int = 0
    accepted: int = 0  #: 202 Accepted answers waited out (asked again, no retry spent)
    #: Records the run will have written in all (NOBB: the planned x-totalHits).
    expected: int | None = None
    #: Records in the kept shards of a resumed run (``expected`` counts them too).
    before: int = 0
    #: Seconds of the time range to harvest, and those finished windows cover (DBK).
    span_total: int = 0
    span_done: int = 0
    #: The source's limiter report (``RateLimiter.report``): the policy in force.
    rate: Callable[[], Mapping[str, object]] | None = None
    started: float = field(default_factory=time.monotonic)
    #: Set on SIGINT/SIGTERM: the source is draining (the display says so).
    stopping: bool = False
    #: Set once the source has ended: its closing summary line, and whether it is complete.
    summary: str | None = None
    ok: bool = True
    ended: float | None = None

    def finish(self, summary: str, *, ok: bool, now: float | None = None) -> None:
        """The source ended: keep its summary; its rates and share stop moving here."""
        self.summary, self.ok = summary, ok
        self.ended = time.monotonic() if now is None else now

    def elapsed(self, now: float | None = None) -> float:
        end = self.ended if self.ended is not None else time.monotonic() if now is None else now
        return max(1e-6, end - self.started)

    def fraction(self) -> float | None:
        """The share done, 0..1: of the time range where there is one, else of ``expected``."""
        if self.span_total > 0:
            return min(1.0, self.span_done / self.span_total)
        if self.expected:
            return min(1.0, (self.before + self.records) / self.expected)
        return None

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left at the pace so far (None: no share known yet, or none done)."""
        done = self.fraction()
        if done is None or not 0 < done < 1 or self.ended is not None:
            return None
        return self.elapsed(now) * (1 - done) / done

    def policy(self, *, short: bool = False) -> str:
        """The rate policy in force (``policy_in_force``), empty before the limiter exists."""
        return policy_in_force(self.rate(), short=short) if self.rate is not None else ""

    def line(self, now: float | None = None) -> str:
        """One plain line: records, share, partitions, MB/s, req/s with the policy in force,
        429s, retries, ETA."""
        elapsed = self.elapsed(now)
        done, policy, left = self.fraction(), self.policy(), self.eta(now)
        parts = [
            f"{self.source}: {counted(self.records, 'record')}"
            + (f" ({done:.0%})" if done is not None else ""),
            f"partitions {self.partitions_done}/{self.partitions_total or '?'}",
            f"{self.bytes_in / elapsed / 1e6:.1f} MB/s",
            f"{self.requests / elapsed:.1f} req/s" + (f" (policy {policy})" if policy else ""),
            f"429s {self.throttled}",
            f"retries {self.retries}",
        ]
        if self.partitions_failed:
            parts.append(f"FAILED {self.partitions_failed}")
        if left is not None:
            parts.append(f"ETA {duration(left)}")
        return ", ".join(parts)


class Reporter:
    """Plain progress lines until stopped; an async context manager with idempotent ``aclose``.

    Enabled with ``mode="always"`` (``auto`` shows nothing off a terminal: cron mail stays
    quiet). With ``log_format="json"`` each line is a JSON object like a log record's.
    """

    def __init__(
        self,
        items: Sequence[Progress],
        *,
        mode: ProgressMode = "auto",
        stream: TextIO | None = None,
        interval: float = 10.0,
        log_format: str = "text",
    ) -> None:
        self._items = items
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = mode == "always"
        self._json = log_format == "json"
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._enabled

    async def __aenter__(self) -> Reporter:
        if self._enabled:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reporting; safe to call twice."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def render(self) -> str:
        """The sources still running, one line (a JSON object per source with ``json``)."""
        running = [p for p in self._items if p.ended is None]
        if not self._json:
            return " | ".join(p.line() for p in running)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return "\n".join(
            orjson.dumps(
                {
                    "time": stamp,
                    "level": "info",
                    "logger": "harvester.progress",
                    "message": p.line(),
                    "source": p.source,
                }
            ).decode()
            for p in running
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            if text := self.render():
                self._stream.write(text + "\n")
                self._stream.flush()
