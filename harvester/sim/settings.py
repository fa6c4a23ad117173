"""The simulator's settings: one frozen value, built from `harvester simulate` flags or by tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from harvester.sim.readings import Readings

__all__ = ["DEFAULT_NOW", "FaultProfile", "RateHeaders", "ResetStyle", "RetryAfter", "SimSettings"]

FaultProfile = Literal["none", "flaky", "hostile"]
RateHeaders = Literal["x", "ietf", "ietf6", "both"]
ResetStyle = Literal["epoch", "delta"]
RetryAfter = Literal["none", "seconds", "date"]
#: The "now" a world is built for unless one is injected (never today's date, so that a world
#: and every fault fingerprint in it are the same on any day).
DEFAULT_NOW = datetime(2026, 11, 20, tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimSettings:
    """Everything that shapes the simulated world; equal settings give byte-identical answers.

    >>> SimSettings(nobb_items=1000, rate_limit=20, rate_window=2.0).rate_window
    2.0
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    nobb_items: int = 20_000
    dbk_products: int = 5_000
    rate_limit: int = 600
    rate_window: float = 60.0
    #: ``x-ratelimit-reset`` as a UNIX time (the NOBB docs) or as seconds from now.
    reset_style: ResetStyle = "epoch"
    #: Which rate-limit headers: x-ratelimit-*, IETF drafts 07-08, drafts <= 06, or x + IETF.
    rate_headers: RateHeaders = "x"
    #: The server's clock (Date, window alignment, UNIX-time resets) runs this far ahead.
    clock_skew: float = 0.0
    #: A sliding window (remaining recovers as requests age out) instead of a fixed one.
    rate_sliding: bool = False
    # -- quotas nobody announces (open-points.md, "Quota not announced"); all off by default --
    #: The limit is enforced, but no answer carries rate-limit headers (only 429s show it).
    rate_hidden: bool = False
    #: What a 429 says of when to come back: nothing, ``Retry-After`` in seconds (rounded up),
    #: or ``Retry-After`` as an HTTP date (the window's end, rounded up to the second).
    retry_after: RetryAfter = "none"
    #: After this many requests to an API (0: never) its limit becomes ``rate_change_to``: a
    #: quota that drops or rises part-way through a run.
    rate_change_after: int = 0
    rate_change_to: int = 0
    latency_ms: float = 0.0
    token_ttl: float = 7200.0
    dbk_max_products: int = 2000
    #: Opt-in: a catalogue of 3,000+ products has one second holding ``dbk_max_products + 1``
    #: products, which no client can harvest exactly (the default world is harvestable).
    dbk_bulk_second: bool = False
    faults: FaultProfile = "none"
    #: A permanent fault: every request whose path and query (or JSON body) contain this text
    #: answers 500, however often it is retried (NOBB and DBK exports; never authentication).
    fail_matching: str | None = None
    #: The readings of the open window ends (open-points.md): DBK ``updatedFrom`` inclusive and
    #: ``updatedTo`` exclusive, NOBB ``from`` and ``to`` inclusive, unless one of these is set.
    dbk_from_exclusive: bool = False
    dbk_to_inclusive: bool = False
    nobb_from_exclusive: bool = False
    nobb_to_exclusive: bool = False
    username: str = "harvester"
    password: str = "harvester"
    #: The moment the world is built for (timezone-aware): both catalogues' changes end at it.
    now: datetime = DEFAULT_NOW
    #: The other readings of the docs' open points, each off by default (``readings.py``).
    readings: Readings = field(default_factory=Readings)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        for name in (
            "nobb_items",
            "dbk_products",
            "rate_limit",
            "dbk_max_products",
            "rate_change_after",
            "rate_change_to",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.rate_window <= 0 or self.token_ttl <= 0 or self.latency_ms < 0:
            raise ValueError("rate_window and token_ttl must be > 0, latency_ms >= 0")
        if self.fail_matching == "":
            raise ValueError("fail_matching must not be empty (None: no permanent fault)")
        if self.reset_style not in ("epoch", "delta"):
            raise ValueError(f"reset_style must be epoch or delta, not {self.reset_style!r}")
        if self.rate_headers not in ("x", "ietf", "ietf6", "both"):
            raise ValueError(
                f"rate_headers must be x, ietf, ietf6 or both, not {self.rate_headers!r}"
            )
        if self.retry_after not in ("none", "seconds", "date"):
            raise ValueError(f"retry_after must be none, seconds or date, not {self.retry_after!r}")
        if self.now.tzinfo is None:
            raise ValueError(f"now must carry a timezone (e.g. Z), not {self.now.isoformat()}")
        if self.faults not in ("none", "flaky", "hostile"):
            raise ValueError(f"faults must be none, flaky or hostile, not {self.faults!r}")
