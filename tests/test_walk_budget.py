"""WalkBudget and the cut of a partition by change date, with literal numbers and probes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from harvester.plan.partitions import Probe
from harvester.plan.walk import Claim, Partition, Seam, Walk
from harvester.plan.walk_budget import WalkBudget
from harvester.sources.nobb_split import child_seam, split


def test_budget_before_and_after_an_expiry() -> None:
    """Unmeasured: the cap rules; an expiry lowers the limit to 80 % of the shortest life seen."""
    b = WalkBudget(cap=5400.0)
    assert (b.seconds, b.pages) == (5400.0, 1_000_000)
    b.observe_page(0.5)
    assert (b.seconds, b.pages) == (5400.0, 10800)
    b.observe_expiry(10.0)
    b.observe_expiry(12.0)  # a longer life seen later does not raise the bound
    assert (b.life, b.seconds, b.pages, b.expiries) == (10.0, 8.0, 16, 2)
    b.observe_expiry(0.0)  # died before its second page: one page a chain (page 1 needs none)
    assert (b.seconds, b.pages) == (0.0, 1)


def test_page_time_is_a_moving_average() -> None:
    """Each page moves the estimate a fifth of the way to its own time."""
    b = WalkBudget(cap=100.0)
    b.observe_page(1.0)
    b.observe_page(2.0)
    assert b.page_seconds == pytest.approx(1.2)


def test_should_cut_uses_the_chain_own_page_time() -> None:
    """A chain is cut when one more of its own average pages would pass the limit."""
    b = WalkBudget(cap=10.0)
    assert not b.should_cut(elapsed=8.9, pages=9)  # 8.9 + 0.99 <= 10
    assert b.should_cut(elapsed=9.1, pages=9)  # 9.1 + 1.01 > 10
    b.observe_page(3.0)
    assert b.should_cut(elapsed=7.5, pages=0)  # no page yet: the run's page time


def test_pieces_fit_each_walk_in_the_budget() -> None:
    """Pieces of 80 % of a walk's pages, both ends counted; at least one."""
    b = WalkBudget(cap=2.0)
    b.observe_page(0.25)  # 8 pages a chain
    assert b.pieces(12_000, page_size=50, ends=2) == 19  # 640 items a piece
    assert b.pieces(640, page_size=50, ends=2) == 1
    assert b.pieces(641, page_size=50, ends=1) == 3
    assert b.pieces(0, page_size=50, ends=2) == 1
    with pytest.raises(ValueError):
        WalkBudget(cap=0)


def _probe_of(days: dict[date, int]) -> tuple[Probe, list[tuple[date | None, date | None]]]:
    """A literal catalogue: items per change day; counts items in [lo, hi], open ends open."""
    asked: list[tuple[date | None, date | None]] = []

    async def probe(lo: date | None, hi: date | None) -> int:
        asked.append((lo, hi))
        return sum(n for d, n in days.items()
                   if (lo is None or d >= lo) and (hi is None or d <= hi))  # fmt: skip

    return probe, asked


async def test_split_tiles_the_partition_and_keeps_its_bounds() -> None:
    """Pieces cover the partition's days with no gap or overlap and keep its open/closed ends."""
    days = {date(2020, 1, 1) + timedelta(days=i): 10 for i in range(100)}
    probe, asked = _probe_of(days)
    part = Partition("2020-01-11", None)
    pieces = await split(probe, part, first=date(1990, 1, 1), today=date(2020, 4, 9),
                         pieces=3, fanout=4, grain=1)  # fmt: skip
    assert pieces is not None and 2 <= len(pieces) <= 3
    assert pieces[0].date_from == "2020-01-11" and pieces[-1].date_to is None
    # Every probe stayed inside the partition: from its lower bound on.
    assert asked and all(lo == date(2020, 1, 11) for lo, _ in asked)
    counts = [await probe(date.fromisoformat(p.date_from or "1990-01-01"),
                          date.fromisoformat(p.date_to) if p.date_to else None)
              for p in pieces]  # fmt: skip
    assert sum(counts) == 900 and max(counts) <= 900 // len(pieces) + 130


async def test_one_day_cannot_be_cut() -> None:
    """A one-day partition, or one whose items all fall on one day, is not cut: None."""
    probe, _ = _probe_of({date(2024, 5, 5): 5000})
    one_day = Partition("2024-05-05", "2024-05-05")
    assert await split(probe, one_day, first=date(1990, 1, 1), today=date(2026, 1, 1),
                       pieces=4, fanout=4, grain=1) is None  # fmt: skip
    wide = Partition(None, "2025-01-01")
    assert await split(probe, wide, first=date(1990, 1, 1), today=date(2026, 1, 1),
                       pieces=4, fanout=4, grain=1) is None  # fmt: skip


async def test_a_few_dozen_items_far_above_the_open_bound_are_cut() -> None:
    """A first partition (open below, probes spread from 1990) holding 60 items on two days of
    2006-2007, within the tolerance of one piece: still cut in two, each day its own piece."""
    probe, _ = _probe_of({date(2006, 3, 1): 30, date(2007, 5, 1): 30})
    part = Partition(None, "2007-09-11")
    pieces = await split(probe, part, first=date(1990, 1, 1), today=date(2026, 12, 7),
                         pieces=2, fanout=4, grain=40)  # fmt: skip
    assert pieces is not None and len(pieces) == 2
    assert pieces[0].date_from is None and pieces[-1].date_to == "2007-09-11"
    cut = date.fromisoformat(pieces[0].date_to or "")
    assert date(2006, 3, 1) <= cut < date(2007, 5, 1)


def test_a_piece_starts_where_the_partition_ends_stood() -> None:
    """Keys the partition's ends claimed are SEEN by a piece; reaching the other end is MET."""
    parent = Seam()
    Walk(Partition(None, None), "asc", parent, page_size=10)
    Walk(Partition(None, None), "desc", parent, page_size=10)
    assert parent.claim("asc", 100) is Claim.CLAIMED
    assert parent.claim("desc", 900) is Claim.CLAIMED
    seam = child_seam(parent)
    asc = Walk(Partition("2020-01-01", "2020-06-30"), "asc", seam, page_size=10)
    asc.first_request()
    assert [asc.on_item(k) for k in (50, 100, 300, 900)] == [
        Claim.SEEN, Claim.SEEN, Claim.CLAIMED, Claim.MET,
    ]  # fmt: skip
    assert seam.closed and not parent.closed


def test_a_cut_seam_stops_both_ends_at_their_page_end() -> None:
    """Once the seam is cut, an end's next page end asks for nothing more."""
    seam = Seam()
    walk = Walk(Partition(None, None), "asc", seam, page_size=2)
    walk.first_request()
    walk.on_item(1)
    walk.on_item(2)
    seam.cut = True
    assert walk.on_page_end({"x-forwardToken": "t2"}) is None and walk.done


def test_an_end_that_stopped_is_not_counted_on() -> None:
    """With the other end stopped (done, as for a cut it left to this end), a small gap does
    not end this walk: it walks on alone until it meets the other's claims."""
    seam = Seam()
    asc = Walk(Partition(None, None), "asc", seam, page_size=10)
    desc = Walk(Partition(None, None), "desc", seam, page_size=10)
    asc.first_request()
    desc.first_request()
    for key in (1, 2, 3):
        asc.on_item(key)
    seam.total = 8  # 5 keys left: the ascending end's fresh page would bring them
    for key in (99, 98, 97):
        desc.on_item(key)
    assert desc.on_page_end({"x-forwardToken": "d2", "x-totalHits": "8"}) is None
    desc2_seam = Seam()
    asc2 = Walk(Partition(None, None), "asc", desc2_seam, page_size=10)
    desc2 = Walk(Partition(None, None), "desc", desc2_seam, page_size=10)
    asc2.first_request()
    desc2.first_request()
    for key in (1, 2, 3):
        asc2.on_item(key)
    asc2.done = True  # stopped: its next page will never come
    for key in (99, 98, 97):
        desc2.on_item(key)
    assert desc2.on_page_end({"x-forwardToken": "d2", "x-totalHits": "8"}) == {
        "pageSize": "10", "sortField": "NobbNo", "sortOrder": "desc", "pageToken": "d2",
    }  # fmt: skip
