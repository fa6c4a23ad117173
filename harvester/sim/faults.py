"""Fault profiles: deterministic per seed, and never permanent for one request.

A fault is chosen from (seed, request identity, attempt number): the identity is what makes a
request the same request when retried (method, path, query and body), the attempt number counts
how often that identity was seen. Only the first attempts of an identity can fail, so a client
that retries always gets through, and a run with the same seed and the same requests sees the
same faults.

``flaky``   about 6 % of identities answer 500 on the first attempt, 4 % reset the connection
            mid-body, 4 % trickle their body slowly (small chunks with pauses).
``hostile`` everything in flaky, plus 429 storms (about 4 % of identities get a 429 first), the
            rate limit dropping to half after 200 requests, truncated compressed streams (3 %),
            and malformed bodies (3 %: the body is cut and garbage appended).

Apart from the profiles, ``fails_always`` is the one permanent fault (``--fail-matching``): a
request whose path and query or body contain the given text answers 500 every time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Fault", "FaultPlan", "Once", "fails_always", "hash_share"]

Fault = Literal["none", "error500", "reset", "slow", "throttle", "truncate", "malformed"]

_RATES: dict[str, list[tuple[Fault, float]]] = {
    "none": [],
    "flaky": [("error500", 0.06), ("reset", 0.04), ("slow", 0.04)],
    "hostile": [
        ("error500", 0.06),
        ("reset", 0.04),
        ("slow", 0.03),
        ("throttle", 0.04),
        ("truncate", 0.03),
        ("malformed", 0.03),
    ],
}
#: After this many requests the hostile profile halves the rate limit.
LIMIT_DROP_AFTER = 200


@dataclass(slots=True)
class FaultPlan:
    """Decides the fault for each request; counts what it injected."""

    profile: str
    seed: int
    attempts: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    def decide(self, identity: str, *, allow: tuple[Fault, ...] | None = None) -> Fault:
        """The fault for this attempt of ``identity`` ("none" for a clean answer)."""
        self.requests += 1
        attempt = self.attempts.get(identity, 0)
        self.attempts[identity] = attempt + 1
        if attempt > 0 or not _RATES[self.profile]:
            return "none"
        digest = hashlib.blake2b(f"{self.seed}|{identity}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        for fault, rate in _RATES[self.profile]:
            if u < rate:
                if allow is not None and fault not in allow:
                    return "none"
                self.injected[fault] = self.injected.get(fault, 0) + 1
                return fault
            u -= rate
        return "none"

    def limit_dropped(self) -> bool:
        """True once the hostile profile's limit drop is in force."""
        return self.profile == "hostile" and self.requests >= LIMIT_DROP_AFTER


def fails_always(text: str | None, path_qs: str, body: bytes) -> bool:
    """True if ``text`` occurs in the request's path and query or in its body (a 500, always)."""
    return text is not None and (text in path_qs or text.encode() in body)


def hash_share(identity: str) -> float:
    """A number in [0, 1) fixed by ``identity``: the same request gets the same share."""
    digest = hashlib.blake2b(identity.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Once:
    """Identities seen: ``add`` is True the first time an identity comes, False after."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def add(self, identity: str) -> bool:
        if identity in self._seen:
            return False
        self._seen.add(identity)
        return True
