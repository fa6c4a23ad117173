"""How far a server's clock is from ours, as its ``Date`` headers bound it: no I/O, no clock.

``Date`` is the server's time floored to the second, taken between our request's send and its
answer's receipt, so each answer bounds the skew (server minus ours) to ``[Date - received,
Date + 1 - sent)``. ``ServerClock`` intersects those bounds (starting again when they
contradict: the server's clock jumped) and applies the lower bound as ``skew`` once it exceeds
``Date``'s one-second resolution; below that our clock stands.
"""

from __future__ import annotations

__all__ = ["ServerClock"]


class ServerClock:
    """The skew of one server's clock (module docstring)."""

    __slots__ = ("bounds", "skew")

    def __init__(self) -> None:
        self.bounds: tuple[float, float] | None = None
        self.skew = 0.0

    def observe(self, date: float, *, sent_wall: float, received_wall: float) -> None:
        """Take one answer's ``Date`` (UNIX seconds) with our wall times around it."""
        low, high = date - received_wall, date + 1 - sent_wall
        b = self.bounds
        if b is None or max(low, b[0]) > min(high, b[1]):
            self.bounds = (low, high)
        else:
            self.bounds = (max(low, b[0]), min(high, b[1]))
        low = self.bounds[0]
        self.skew = low if abs(low) > 1.0 else 0.0

    def early(self) -> float:
        """How much earlier than the applied skew says a server time may come in ours."""
        return max(0.0, self.bounds[1] - self.skew) if self.skew and self.bounds else 0.0

    def late(self) -> float:
        """How much later a server time may come when no skew is applied (a server clock
        behind ours by under a second)."""
        return max(0.0, -self.bounds[0]) if not self.skew and self.bounds else 0.0
