"""NOBB token walks as pure state machines: one end of a partition, and the seam between ends.

A partition (a ``from``/``to`` day window) is walked from both ends at once: ascending and
descending by ``nobbNumber``. ``Seam`` decides who owns each key: the ascending walk claims keys
above everything it has claimed and below everything the descending walk has claimed, and the
other way round; the first key a walk meets on the other side ends that walk. Every key of the
partition is therefore claimed exactly once, whatever the interleaving of the two walks' pages.
Once either end meets the other the partition is complete (``Seam.closed``), and an end whose
page ends where the other end's page in flight will certainly reach (by ``x-totalHits`` less the
keys claimed) stops there: the last round trip is made by one end, not both. One end stopping
early is always safe, since the other walks on until it meets.

``Walk`` is one end. The caller asks for the first request's parameters, then reports each item
key in order (``on_item``) and the page's headers (``on_page_end``) and gets the next request's
parameters or None. Rules:

- Headers are read case-insensitively in both spellings the docs use (``x-forwardToken`` and
  ``x-forward-token``, ``page_headers.py``); no forward token means the partition is exhausted.
- Token expiry. Tokens die 2 h after the walk began and the API then silently returns page 1.
  A page whose first key does not continue the walk's order (ascending: not above the last key
  seen) is that page 1: ``on_item`` answers ``RESTART`` and the caller fetches ``restart()``'s
  request; keys already claimed come back as ``SEEN`` and are skipped. Restarts are bounded.
- Guards, never loop forever: a forward token equal to the previous one, the same page twice,
  too many empty pages, too many pages: ``PaginationError`` naming the partition
  (``token_chain.py``).
- A page retried after part of it was read (``retry_page``) restarts the page's bookkeeping, so
  its items are SEEN (already written), not mistaken for an expiry.
- Resume after a crash: ``continue_after(key, token)`` continues a saved chain (positions.py);
  if its token died, page 1 comes back and the walk restarts as above; ``resume_from(key)``
  alone starts at page 1 and treats every key up to ``key`` (in walk order) as SEEN.

A partition whose walk would outlive its tokens is cut (``Seam.cut``): both ends stop at their
next page end and smaller partitions by change date take over, starting from the seam
(``sources/nobb_plan.py``, ``sources/nobb_split.py``, ``walk_budget.py``).

Items whose change date moves during a dump leave their window. The caller walks a last catch-up
partition ``from`` = the run's start date after all others, so an item that moved before its walk
reached it is still written. One that moved after it was written is met again with a newer line:
in a dump that line replaces the first in the committed shards (``store/latest.py``,
``RunState.supersede``; past ``NEWER_MAX`` such items the rest keep their first version and the
next sync carries them); in a sync the key set keeps the first and the next sync carries it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence

from harvester.errors import PaginationError
from harvester.plan.page_headers import FORWARD, TOTAL, header
from harvester.plan.partitions import Partition
from harvester.plan.seam import Claim, Direction, Seam
from harvester.plan.token_chain import TokenChain

__all__ = ["Claim", "Partition", "Seam", "Walk"]


class Walk:
    """One end of a partition's token walk (see the module docstring)."""

    def __init__(
        self,
        partition: Partition,
        direction: Direction,
        seam: Seam,
        *,
        page_size: int,
        filters: Mapping[str, str] | None = None,
        max_restarts: int = 3,
        max_pages: int = 100_000,
        max_empty_pages: int = 3,
    ) -> None:
        self.partition = partition
        self.direction = direction
        self.seam = seam
        self._base = {
            "pageSize": str(page_size),
            "sortField": "NobbNo",
            "sortOrder": direction,
            **partition.params(),
            **(filters or {}),
        }
        self._max_restarts = max_restarts
        self._tokens = TokenChain(max_pages=max_pages, max_empty_pages=max_empty_pages)
        self.pages = 0
        self.restarts = 0
        self.done = False
        self.total_hits: int | None = None
        self._last: int | None = None  # furthest key seen in walk order, over all chains
        self._chain_last: int | None = None  # last key seen in the current token chain
        self._page_start: int | None = None
        self._page_keys: list[int] = []
        self._page_size = page_size
        self._fresh = True
        seam.ends[direction] = self

    @property
    def label(self) -> str:
        return f"nobb partition {self.partition.id} ({self.direction})"

    @property
    def position(self) -> int | None:
        """The last key this walk has seen, for checkpoints."""
        return self._last

    def resume_from(self, key: int) -> None:
        """Continue after a crash: keys up to ``key`` (in walk order) were written already."""
        self._last = key
        if self.direction == "asc":
            self.seam.asc_high = max(key, self.seam.asc_high or key)
        else:
            self.seam.desc_low = min(key, self.seam.desc_low or key)

    def continue_after(self, key: int, token: str) -> dict[str, str]:
        """A resumed walk's first request: the page after ``key`` in a saved token chain.

        If the token died, page 1 comes back: ``on_item`` answers RESTART as for any expiry,
        and ``restart()`` walks from page 1 with every key up to ``key`` seen.
        """
        self.resume_from(key)
        self._chain_last = key
        self._tokens.resume(token)
        self.begin_page()
        return {**self._base, "pageToken": token}

    def first_request(self) -> dict[str, str]:
        """Parameters of page 1."""
        self.begin_page()
        return dict(self._base)

    def begin_page(self) -> None:
        """A page's body starts; call again (``retry_page``) if the same request is re-sent."""
        self._page_start = self._chain_last
        self._page_keys = []
        self._fresh = self._chain_last == self._last  # the page brings keys never seen

    def retry_page(self) -> None:
        """The current page is being fetched again after a failure part-way through."""
        self._chain_last = self._page_start
        self._page_keys = []
        self._fresh = False

    def on_item(self, key: int) -> Claim:
        """One item of the current page, in the order served."""
        if self.done:
            return Claim.MET
        if not self._page_keys and not self._beyond(key, self._page_start):
            return Claim.RESTART
        self._page_keys.append(key)
        if self._beyond(key, self._chain_last):
            self._chain_last = key
        if self._beyond(key, self._last):
            self._last = key
        claim = self.seam.claim(self.direction, key)
        if claim is Claim.MET:
            self.done = True
        return claim

    def on_items(self, keys: Sequence[int]) -> list[Claim]:
        """``on_item`` for each of ``keys`` in order, up to and including a RESTART or MET.

        The same answers and state as calling ``on_item`` key by key, in one loop over locals.
        """
        out: list[Claim] = []
        if not keys:
            return out
        if self.done or not self._page_keys:  # a page's first key may be an expiry
            first = self.on_item(keys[0])
            out.append(first)
            if first is Claim.RESTART or first is Claim.MET:
                return out
            keys = keys[1:]
        seam, asc = self.seam, self.direction == "asc"
        beyond = operator.gt if asc else operator.lt
        mine, theirs = (seam.asc_high, seam.desc_low) if asc else (seam.desc_low, seam.asc_high)
        chain, last = self._chain_last, self._last
        if self._all_new(keys, beyond, (mine, chain, last), theirs):
            # The usual chunk: keys in walk order, all beyond this end and short of the other.
            end = keys[-1]
            self._page_keys.extend(keys)
            self._chain_last = self._last = end
            if asc:
                seam.asc_high = end
            else:
                seam.desc_low = end
            seam.claimed += len(keys)
            return out + [Claim.CLAIMED] * len(keys)
        claimed, seen, new = Claim.CLAIMED, Claim.SEEN, 0
        taken = 0
        for key in keys:
            taken += 1
            if chain is None or beyond(key, chain):
                chain = key
            if last is None or beyond(key, last):
                last = key
            if theirs is not None and not beyond(theirs, key):  # the other end's key: met
                seam.closed = self.done = True
                out.append(Claim.MET)
                break
            if mine is not None and not beyond(key, mine):
                out.append(seen)
            else:
                mine = key
                new += 1
                out.append(claimed)
        self._page_keys.extend(keys[:taken])
        self._chain_last, self._last = chain, last
        if asc:
            seam.asc_high = mine
        else:
            seam.desc_low = mine
        seam.claimed += new
        return out

    @staticmethod
    def _all_new(
        keys: Sequence[int],
        beyond: Callable[[int, int], bool],
        behind: tuple[int | None, ...],
        theirs: int | None,
    ) -> bool:
        """True if ``keys`` run strictly in walk order, past all ``behind``, before ``theirs``."""
        if not keys:
            return False
        first, end = keys[0], keys[-1]
        if any(ref is not None and not beyond(first, ref) for ref in behind):
            return False
        if theirs is not None and not beyond(theirs, end):
            return False
        return all(map(beyond, keys[1:], keys))

    def restart(self) -> dict[str, str]:
        """Parameters of page 1 after an expired token; keys already seen will be SEEN."""
        self.restarts += 1
        if self.restarts > self._max_restarts:
            raise PaginationError(
                f"page 1 came back {self.restarts} times (tokens keep expiring)", request=self.label
            )
        self._tokens.restart()
        self._chain_last = self._page_start = None  # a fresh chain: its page 1 is expected
        self._page_keys = []
        self._fresh = self._last is None
        return dict(self._base)

    def on_page_end(self, headers: Mapping[str, str]) -> dict[str, str] | None:
        """The current page is complete: the next request's parameters, or None when done."""
        self.pages += 1
        total = header(headers, TOTAL)
        if total is not None and total.isdigit():
            self.seam.total = int(total)
            if self.total_hits is None:
                self.total_hits = int(total)
        if self.done or self.seam.closed or self.seam.cut or self._other_end_finishes():
            self.done = True
            return None
        token = header(headers, FORWARD)
        if token is None:
            self.done = True
            return None
        self._tokens.follow(token, self._page_keys, pages=self.pages, label=self.label)
        self.begin_page()
        return {**self._base, "pageToken": token}

    def _other_end_finishes(self) -> bool:
        """True if the other end's current page will reach this end: no need for another page.

        The other end's page brings the next keys after its furthest one, as many as the page
        has left. If that covers every unclaimed key, it meets this end; if x-totalHits was low
        (items arrived), the other end simply walks on alone until it meets, so stopping here
        is always safe, and costs at worst the round trips it would have shared.
        """
        other = self.seam.ends.get("desc" if self.direction == "asc" else "asc")
        gap = self.seam.gap()
        if other is None or other.done or gap is None:
            return False
        return other.will_reach(gap)

    def will_reach(self, gap: int) -> bool:
        """True if this end's page in flight brings at least ``gap`` more keys."""
        return self._fresh and gap <= self._page_size - len(self._page_keys)

    def _beyond(self, key: int, ref: int | None) -> bool:
        """True if ``key`` comes after ``ref`` in this walk's order (anything is after None)."""
        if ref is None:
            return True
        return key > ref if self.direction == "asc" else key < ref
