"""Where each unfinished NOBB walk stands, for checkpoints and for continuing after a crash.

A walk's position is taken at a page boundary: the last key of the last whole page (in walk
order), the forward token of the page after it, and when the walk's token chain began (tokens
die ``token_ttl`` after that). Every item up to the key has been handed to the sink, so once
the sink is committed the position is true. ``Positions`` keeps the live ones and snapshots
them as JSON for ``checkpoint.json``; on ``--resume`` they come back from it:

- both ends' keys are put back on the partition's seam before either walk starts, so each end
  claims only keys on its side of what was written;
- a walk whose chain is younger than ``token_ttl`` minus a margin continues from its token; if
  the token died anyway, page 1 comes back and the walk restarts (``walk.py``) with every key up
  to the position counted as seen. An older chain starts at page 1 the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harvester.plan.walk import Seam

__all__ = ["Position", "Positions"]

MARGIN = 300.0  # seconds of token life a continued chain must have left


@dataclass(frozen=True, slots=True)
class Position:
    """One walk's durable point: its last key, the next page's token, its chain's start."""

    key: int
    token: str | None
    began: float

    def usable(self, now: float, token_ttl: float) -> bool:
        """True if the token is worth trying: its chain is young enough to be alive."""
        return self.token is not None and now - self.began < token_ttl - MARGIN


class Positions:
    """The live positions of a run's walks: ``{partition id: {direction: Position}}``."""

    def __init__(self, saved: Mapping[str, object] | None = None) -> None:
        self._walks: dict[str, dict[str, Position]] = {}
        for pid, ends in (saved or {}).items():
            if not isinstance(ends, Mapping):
                continue
            for direction, raw in ends.items():
                try:
                    pos = Position(int(raw["key"]), raw.get("token"), float(raw["began"]))
                except (KeyError, TypeError, ValueError, AttributeError):
                    continue  # a damaged entry: that walk starts at page 1
                self._walks.setdefault(pid, {})[direction] = pos

    def get(self, pid: str, direction: str) -> Position | None:
        return self._walks.get(pid, {}).get(direction)

    def restore(self, pid: str, seam: Seam) -> None:
        """Put the saved ends of ``pid`` back on its seam (before either walk starts)."""
        ends = self._walks.get(pid, {})
        if "asc" in ends:
            seam.asc_high = ends["asc"].key
        if "desc" in ends:
            seam.desc_low = ends["desc"].key

    def update(self, pid: str, direction: str, key: int, token: str | None, began: float) -> None:
        self._walks.setdefault(pid, {})[direction] = Position(key, token, began)

    def drop(self, pid: str) -> None:
        """The partition is finished: its positions are of no more use."""
        self._walks.pop(pid, None)

    def snapshot(self) -> dict[str, object]:
        """JSON for the checkpoint."""
        return {
            pid: {d: {"key": p.key, "token": p.token, "began": p.began} for d, p in ends.items()}
            for pid, ends in self._walks.items()
        }
