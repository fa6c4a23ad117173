"""How long one NOBB token chain may run, and so how many pages a walk may take: pure, no I/O.

A token chain dies ``token_ttl`` after the walk's first page (the docs say 2 h; a server may
say less, and says so only by silently serving page 1 again). A walk must therefore finish
inside that life, and a partition whose walk cannot must be cut into smaller ones (by change
date). ``WalkBudget`` holds what the run knows:

- ``cap``: ``nobb.walk_max_seconds``, the longest a chain is planned to run (below ``token_ttl``);
- ``life``: the tokens' life as learned from expiries: a chain whose page came back as page 1
  had died by the time the server served that page, so its age when the answer arrived (from
  before page 1 was asked for) bounds the life from above; its age when the page was asked for
  does not, as the request may have waited for a connection while the chain aged.
  The smallest bound seen is kept and a chain is planned to run ``SAFETY`` of it; a chain that
  still dies teaches a smaller bound, so an estimate too high corrects itself, whereas a lower
  bound (the age at the last good page) can be 0 after one page and would never recover;
- ``page_seconds``: one page's time within a walk (request sent to the next one), a moving
  average over every walk's pages (limiter waits included: they age the chain too).

From those: ``seconds`` a chain may run, ``pages`` it may take, ``should_cut`` a running chain
before its next page would outlive the budget, ``finishes`` when that page is better taken past
the budget (it ends the partition), and ``pieces`` a partition of ``n`` items needs so that
each piece's walk fits.

>>> b = WalkBudget(cap=5400.0)
>>> b.observe_page(0.25); b.observe_expiry(1.75)
>>> b.seconds, b.pages
(1.4, 5)
>>> b.should_cut(elapsed=1.2, pages=5), b.should_cut(elapsed=1.0, pages=5)
(True, False)
>>> b.finishes(elapsed=1.2, pages=5, left=80, per_page=100), b.finishes(elapsed=1.2, pages=5,
...                                                                   left=120, per_page=100)
(True, False)
>>> b.pieces(6000, page_size=50, ends=2)
15
"""

from __future__ import annotations

import math

__all__ = ["PIECE_SHARE", "SAFETY", "WalkBudget"]

#: A chain is planned to run at most this share of the learned token life.
SAFETY = 0.8
#: A piece of a cut is sized to this share of a walk's pages: planning balances pieces only
#: roughly, page times vary, and a piece cut again re-reads pages.
PIECE_SHARE = 0.8
_ALPHA = 0.2  # weight of a new page time in the moving average


class WalkBudget:
    """What the run knows about token life and page time (module docstring)."""

    __slots__ = ("cap", "expiries", "life", "page_seconds", "ttl")

    def __init__(self, cap: float, ttl: float | None = None) -> None:
        if cap <= 0:
            raise ValueError("cap must be > 0")
        self.cap = cap
        #: The configured token life (``nobb.token_ttl``), above ``cap``: no page past it.
        self.ttl = max(cap, ttl) if ttl is not None else cap
        self.life: float | None = None
        self.page_seconds: float | None = None
        self.expiries = 0

    @property
    def seconds(self) -> float:
        """The longest a chain may run: ``cap``, or less once a shorter token life was seen."""
        if self.life is None:
            return self.cap
        return min(self.cap, round(SAFETY * self.life, 6))

    @property
    def pages(self) -> int:
        """Pages one chain may take (at least 1: page 1 needs no token); huge if unmeasured."""
        if not self.page_seconds:
            return 1_000_000
        return max(1, math.floor(self.seconds / self.page_seconds + 1e-9))

    def observe_page(self, seconds: float) -> None:
        """One page of a walk took ``seconds`` (request to page end, waits included)."""
        seconds = max(0.0, seconds)
        if self.page_seconds is None:
            self.page_seconds = seconds
        else:
            self.page_seconds += _ALPHA * (seconds - self.page_seconds)

    def observe_expiry(self, age: float) -> None:
        """A chain's page came back as page 1, answered ``age`` seconds after the chain began."""
        self.expiries += 1
        age = max(0.0, age)
        self.life = age if self.life is None else min(self.life, age)

    def describe(self) -> dict[str, object]:
        """What was learned, for the manifest's ``checks.tokens``: expiries seen, the token life
        they bound (None: none seen), the seconds a chain may run and a page's average seconds."""
        page = None if self.page_seconds is None else round(self.page_seconds, 6)
        life = None if self.life is None else round(self.life, 6)
        return {
            "expired": self.expiries,
            "life_at_most": life,
            "walk_seconds": self.seconds,
            "page_seconds": page,
        }

    def should_cut(self, *, elapsed: float, pages: int) -> bool:
        """True if a chain ``elapsed`` seconds old after ``pages`` pages should not take another.

        The next page is expected to take this chain's own average page time (or the run's,
        before its first page).
        """
        return self._after_next(elapsed, pages) > self.seconds

    def finishes(self, *, elapsed: float, pages: int, left: int | None, per_page: int) -> bool:
        """True if a chain that ``should_cut`` may take its next page anyway: that page ends the
        partition (``left`` items unclaimed by its latest x-totalHits, at most ``per_page``: what
        the ends' next pages may bring) and still falls inside the tokens' life (``ttl``, or the
        life learned if shorter).

        A cut costs probes and re-reads the partition's pages (its pieces are cut by change date,
        a walk goes by key); a last page past the budget costs at worst that page, if the tokens
        die on it after all, which teaches the life, and the cut follows then. Each such page
        shrinks ``left`` by what it brings (x-totalHits is re-read with every page), and none is
        taken past the tokens' life, so a walk cannot run on this way.
        """
        if left is None or left > per_page:
            return False
        life = self.ttl if self.life is None else min(self.ttl, self.life)
        return self._after_next(elapsed, pages) <= life

    def _after_next(self, elapsed: float, pages: int) -> float:
        """A chain's age after its next page: its own average page time on (the run's before
        its first page)."""
        return elapsed + (elapsed / pages if pages > 0 else (self.page_seconds or 0.0))

    def pieces(self, items: int, *, page_size: int, ends: int) -> int:
        """Partitions of about equal size that ``items`` need so each walk fits the budget.

        Each piece is sized to ``PIECE_SHARE`` of what ``pages`` allow (see there).
        """
        return max(1, math.ceil(items / self.piece_items(page_size=page_size, ends=ends)))

    def piece_items(self, *, page_size: int, ends: int) -> float:
        """The items one piece is sized to: ``PIECE_SHARE`` of what its ends' ``pages`` take."""
        return max(1.0, page_size * max(1, ends) * self.pages * PIECE_SHARE)
