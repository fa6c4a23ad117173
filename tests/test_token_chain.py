"""A walk's token chain: each guard that stops a chain going round, and restart and resume."""

from __future__ import annotations

import pytest

from harvester.errors import PaginationError
from harvester.plan.token_chain import TokenChain


def _chain(max_pages: int = 100, max_empty_pages: int = 3) -> TokenChain:
    return TokenChain(max_pages=max_pages, max_empty_pages=max_empty_pages)


def test_the_same_page_twice_under_new_tokens_stops_the_walk() -> None:
    """A page of the same count, first and last key as the one before is a PaginationError."""
    chain = _chain()
    chain.follow("t1", [1, 2, 3], pages=1, label="nobb partition p (asc)")
    chain.follow("t2", [4, 5, 6], pages=2, label="nobb partition p (asc)")
    with pytest.raises(PaginationError, match=r"same page came back twice") as caught:
        chain.follow("t3", [4, 9, 6], pages=3, label="nobb partition p (asc)")
    assert caught.value.request == "nobb partition p (asc)"


def test_an_unchanged_token_stops_the_walk_and_more_than_max_pages_too() -> None:
    """A token equal to the previous one, or the max_pages-th page, is a PaginationError."""
    chain = _chain()
    chain.follow("t1", [1], pages=1, label="w")
    with pytest.raises(PaginationError, match="forward token did not change"):
        chain.follow("t1", [2], pages=2, label="w")
    chain = _chain(max_pages=3)
    chain.follow("t1", [1], pages=1, label="w")
    chain.follow("t2", [2], pages=2, label="w")
    with pytest.raises(PaginationError, match="more than 3 pages"):
        chain.follow("t3", [3], pages=3, label="w")


def test_empty_pages_count_over_the_whole_walk_not_in_a_row() -> None:
    """The empty pages are counted over the walk: a full page between them resets nothing."""
    chain = _chain(max_empty_pages=2)
    chain.follow("t1", [], pages=1, label="w")
    chain.follow("t2", [5], pages=2, label="w")
    chain.follow("t3", [], pages=3, label="w")
    with pytest.raises(PaginationError, match="too many empty pages"):
        chain.follow("t4", [], pages=4, label="w")


def test_restart_forgets_the_last_token_and_page_and_resume_sets_the_token() -> None:
    """After restart the same token and page are accepted again; after resume(t), t is not."""
    chain = _chain()
    chain.follow("t1", [1, 2], pages=1, label="w")
    chain.restart()
    chain.follow("t1", [1, 2], pages=2, label="w")
    chain = _chain()
    chain.resume("saved")
    with pytest.raises(PaginationError, match="forward token did not change"):
        chain.follow("saved", [7], pages=1, label="w")
