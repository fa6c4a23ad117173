"""Token walks: exactly-once at the seam, expiry recovery, and guards, with literal pages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.errors import PaginationError
from harvester.plan.page_headers import header
from harvester.plan.walk import Claim, Partition, Seam, Walk

P = Partition("2020-01-01", "2020-12-31")


def _page(keys: list[int], params: dict[str, str]) -> tuple[list[int], dict[str, str]]:
    """What the API answers: a keyset page; the token is the last key (opaque to the walk)."""
    size = int(params["pageSize"])
    desc = params["sortOrder"] == "desc"
    order = sorted(keys, reverse=desc)
    token = params.get("pageToken")
    if token is not None:
        last = int(token)
        order = [k for k in order if (k < last if desc else k > last)]
    page = order[:size]
    headers = {"x-totalHits": str(len(keys))}
    if len(order) > size:
        headers["x-forwardToken"] = str(page[-1])
    return page, headers


def _run(keys: list[int], schedule: list[int], page_size: int) -> list[int]:
    """Run both ends; ``schedule`` says which end fetches its next page (0 asc, 1 desc)."""
    seam = Seam()
    walks = [Walk(P, "asc", seam, page_size=page_size), Walk(P, "desc", seam, page_size=page_size)]
    nxt: list[dict[str, str] | None] = [w.first_request() for w in walks]
    written: list[int] = []
    steps = iter([*schedule, *([0, 1] * (len(keys) + 4))])
    while any(n is not None for n in nxt):
        i = next(steps)
        params = nxt[i]
        if params is None:
            continue
        page, headers = _page(keys, params)
        for key in page:
            claim = walks[i].on_item(key)
            if claim is Claim.CLAIMED:
                written.append(key)
            elif claim is Claim.MET:
                break
        nxt[i] = walks[i].on_page_end(headers)
    return written


@settings(max_examples=200, deadline=None)
@given(
    keys=st.sets(st.integers(min_value=10_000_000, max_value=99_999_999), max_size=60),
    schedule=st.lists(st.integers(min_value=0, max_value=1), max_size=40),
    page_size=st.integers(min_value=1, max_value=7),
)
def test_both_ends_write_every_key_exactly_once(
    keys: set[int], schedule: list[int], page_size: int
) -> None:
    """Whatever the interleaving of the two ends' pages, each key is written exactly once."""
    written = _run(sorted(keys), schedule, page_size)
    assert sorted(written) == sorted(keys)


def test_one_end_can_finish_alone() -> None:
    """If the ascending end walks everything first, the descending end stops on its first item."""
    keys = list(range(10, 30))
    assert sorted(_run(keys, [0] * 10, 5)) == keys


def _fetch(walk: Walk, params: dict[str, str], keys: list[int]) -> dict[str, str] | None:
    """One page through ``walk``: its items in order, then its headers."""
    page, headers = _page(keys, params)
    for key in page:
        if walk.on_item(key) is Claim.MET:
            break
    return walk.on_page_end(headers)


def test_an_end_stops_where_the_other_ends_page_will_reach() -> None:
    """An end asks for no page the other end's page in flight makes useless."""
    keys = list(range(10, 29))  # 19 keys in pages of 5: 10 claimed in round 1, 9 left
    seam = Seam()
    asc, desc = Walk(P, "asc", seam, page_size=5), Walk(P, "desc", seam, page_size=5)
    a = _fetch(asc, asc.first_request(), keys)
    d = _fetch(desc, desc.first_request(), keys)
    assert a is not None and d is not None
    # Round 2, both pages in flight: asc's ends at 19, leaving 4 keys for desc's page of 5.
    assert _fetch(asc, a, keys) is None
    assert _fetch(desc, d, keys) is None
    assert seam.closed and seam.claimed == len(keys)


def test_an_end_walks_on_alone_when_the_total_was_low() -> None:
    """If x-totalHits undercounts, the end that stopped early loses nothing: the other walks on."""
    keys = list(range(10, 40))
    seam = Seam()
    asc, desc = Walk(P, "asc", seam, page_size=5), Walk(P, "desc", seam, page_size=5)
    a = _fetch(asc, asc.first_request(), keys)
    d = _fetch(desc, desc.first_request(), keys)
    assert a is not None
    page, headers = _page(keys, a)
    for key in page:
        asc.on_item(key)
    assert asc.on_page_end({**headers, "x-totalHits": "12"}) is None  # items arrived unseen
    requests = 0
    while d is not None:
        requests += 1
        d = _fetch(desc, d, keys)
    assert seam.closed and seam.claimed == len(keys)
    assert requests == 4  # 34..30, 29..25, 24..20, then 19: met


def test_empty_partition_ends_after_one_page() -> None:
    """A partition with no items ends both walks after their first page."""
    assert _run([], [], 10) == []


def test_expired_token_restarts_from_page_one_without_duplicates() -> None:
    """Page 1 served again mid-walk is detected; the restart skips keys already written."""
    walk = Walk(P, "asc", Seam(), page_size=3)
    walk.first_request()
    assert [walk.on_item(k) for k in (1, 2, 3)] == [Claim.CLAIMED] * 3
    assert walk.on_page_end({"x-forwardToken": "t1"}) is not None
    assert [walk.on_item(k) for k in (4, 5, 6)] == [Claim.CLAIMED] * 3
    walk.on_page_end({"x-forwardToken": "t2"})
    assert walk.on_item(1) is Claim.RESTART  # the token expired: page 1 again
    params = walk.restart()
    assert "pageToken" not in params
    assert [walk.on_item(k) for k in (1, 2, 3)] == [Claim.SEEN] * 3
    walk.on_page_end({"x-forwardToken": "t1b"})
    assert [walk.on_item(k) for k in (4, 5, 6)] == [Claim.SEEN] * 3
    walk.on_page_end({"x-forwardToken": "t2b"})
    assert [walk.on_item(k) for k in (7, 8)] == [Claim.CLAIMED] * 2
    assert walk.on_page_end({}) is None


def test_restarts_are_bounded() -> None:
    """A walk whose tokens keep expiring gives up with PaginationError naming the partition."""
    walk = Walk(P, "asc", Seam(), page_size=2, max_restarts=2)
    walk.first_request()
    walk.restart()
    walk.restart()
    with pytest.raises(PaginationError, match=r"2020-01-01..2020-12-31 \(asc\)"):
        walk.restart()


def test_retried_page_is_not_mistaken_for_expiry() -> None:
    """A page re-fetched after a failure part-way gives SEEN for what was already claimed."""
    walk = Walk(P, "desc", Seam(), page_size=3)
    walk.first_request()
    assert [walk.on_item(k) for k in (9, 8)] == [Claim.CLAIMED] * 2
    walk.retry_page()
    assert [walk.on_item(k) for k in (9, 8, 7)] == [Claim.SEEN, Claim.SEEN, Claim.CLAIMED]


def test_guards() -> None:
    """An unchanged token and endless empty pages stop the walk (each guard: test_token_chain)."""
    walk = Walk(P, "asc", Seam(), page_size=2)
    walk.first_request()
    walk.on_item(1)
    walk.on_page_end({"x-forwardToken": "same"})
    walk.on_item(2)
    with pytest.raises(PaginationError, match="forward token did not change"):
        walk.on_page_end({"x-forwardToken": "same"})
    walk = Walk(P, "asc", Seam(), page_size=2, max_empty_pages=2)
    walk.first_request()
    with pytest.raises(PaginationError, match="too many empty pages"):
        for n in range(5):
            walk.on_page_end({"x-forwardToken": f"t{n}"})


def test_headers_in_both_spellings() -> None:
    """Paging headers are found in either spelling and any letter case."""
    assert header({"X-Forward-Token": "a"}, ("x-forwardtoken", "x-forward-token")) == "a"
    assert header({"x-forwardToken": "b"}, ("x-forwardtoken", "x-forward-token")) == "b"
    walk = Walk(P, "asc", Seam(), page_size=2)
    walk.first_request()
    walk.on_item(1)
    assert walk.on_page_end({"X-Total-Hits": "7", "x-forward-token": "n"}) == {
        "pageSize": "2", "sortField": "NobbNo", "sortOrder": "asc",
        "from": "2020-01-01", "to": "2020-12-31", "pageToken": "n",
    }  # fmt: skip
    assert walk.total_hits == 7


def test_resume_skips_written_keys() -> None:
    """A walk resumed from a saved position treats keys up to it as already written."""
    seam = Seam()
    walk = Walk(P, "asc", seam, page_size=5)
    walk.resume_from(5)
    walk.first_request()
    assert [walk.on_item(k) for k in (3, 5, 6)] == [Claim.SEEN, Claim.SEEN, Claim.CLAIMED]


@settings(max_examples=300, deadline=None)
@given(
    pages=st.lists(
        st.lists(st.integers(min_value=1, max_value=40), max_size=8), min_size=1, max_size=6
    ),
    other=st.lists(st.integers(min_value=1, max_value=40), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=8), max_size=6),
    desc=st.booleans(),
)
def test_on_items_answers_as_on_item_key_by_key(
    pages: list[list[int]], other: list[int], cuts: list[int], desc: bool
) -> None:
    """A page's keys claimed in chunks give the same claims and state as one by one."""
    ends: list[tuple[Walk, Walk]] = []
    answers: list[list[Claim]] = [[], []]
    for batched in (False, True):
        seam = Seam()
        mine = Walk(P, "desc" if desc else "asc", seam, page_size=8)
        theirs = Walk(P, "asc" if desc else "desc", seam, page_size=8)
        mine.first_request()
        theirs.first_request()
        for key in other:  # the other end's keys, claimed first
            theirs.on_item(key)
        for n, page in enumerate(pages):
            got = answers[batched]
            if batched:
                cut = cuts[n] if n < len(cuts) else 3
                for chunk in (page[:cut], page[cut:]):
                    claims = mine.on_items(chunk) if chunk else []
                    got += claims
                    if claims and claims[-1] in (Claim.RESTART, Claim.MET):
                        break
            else:
                for key in page:
                    got.append(mine.on_item(key))
                    if got[-1] in (Claim.RESTART, Claim.MET):
                        break
            try:
                if got and got[-1] is Claim.RESTART:
                    mine.restart()
                elif mine.on_page_end({"x-forwardToken": f"t{n}"}) is None:
                    break
            except PaginationError:  # a guard (empty pages, restarts): the same for both
                answers[batched].append(Claim.MET)
                break
        ends.append((mine, theirs))
    assert answers[0] == answers[1]
    (a, _), (b, _) = ends
    assert (a.seam.asc_high, a.seam.desc_low, a.seam.claimed, a.seam.closed) == (
        b.seam.asc_high, b.seam.desc_low, b.seam.claimed, b.seam.closed)  # fmt: skip
    assert (a.position, a.done, a._chain_last, a._page_keys) == (
        b.position, b.done, b._chain_last, b._page_keys)  # fmt: skip
