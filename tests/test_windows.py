"""The window planner as a pure state machine, driven by literal responses."""

from __future__ import annotations

import bisect
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.plan.windows import Window, WindowPlanner, estimate, stamp


def count_in(times: list[int], w: Window) -> int:
    return bisect.bisect_left(times, w.end) - bisect.bisect_left(times, w.start)


def drive(planner: WindowPlanner, times: list[int], *, seed: int = 0, parallel: int = 4) -> None:
    """Answer windows like the export does (cut off at the cap), completing in random order."""
    rng = random.Random(seed)
    flying: list[Window] = []
    while True:
        while len(flying) < parallel and (w := planner.take()) is not None:
            flying.append(w)
        if not flying:
            break
        w = flying.pop(rng.randrange(len(flying)))
        n = count_in(times, w)
        if n >= planner.cap:
            planner.truncated(w)
        else:
            planner.complete(w, n)
    assert planner.finished


def assert_partition(planner: WindowPlanner, start: int, end: int) -> None:
    spans = sorted((a, b) for a, b, _ in planner.covered) + sorted(
        (w.start, w.end) for w in planner.unsplittable
    )
    spans.sort()
    assert spans[0][0] == start and spans[-1][1] == end
    for (_, b), (a, _) in itertools.pairwise(spans):
        assert b == a, "windows must share edges: no gap, no overlap"


def test_stamp_is_basic_utc() -> None:
    """Window edges are sent as ISO 8601 basic UTC seconds."""
    assert stamp(0) == "19700101T000000Z"
    assert Window(0, 60).id == "19700101T000000Z..19700101T000100Z"


def test_a_sparse_range_is_one_window() -> None:
    """A range holding fewer products than the cap is fetched in one request per lane."""
    p = WindowPlanner(0, 1000, cap=10, lanes=1)
    w = p.take()
    assert w == Window(0, 1000)
    assert p.take() is None
    p.complete(w, 3)
    assert p.finished and p.covered == [(0, 1000, 3)] and p.requests == 1


def test_a_full_window_is_bisected_and_both_halves_fetched() -> None:
    """A response at the cap is not trusted: its two halves are fetched, lower first."""
    p = WindowPlanner(0, 100, cap=10, lanes=1)
    w = p.take()
    assert w is not None
    assert p.truncated(w) is True
    assert p.take() == Window(0, 50)
    assert p.take() == Window(50, 100)
    assert p.take() is None
    p.complete(Window(50, 100), 4)
    p.complete(Window(0, 50), 9)
    assert p.finished and sorted(p.covered) == [(0, 50, 9), (50, 100, 4)]


def test_a_full_one_second_window_is_unsplittable() -> None:
    """More products than the cap in one second: named, never silently truncated."""
    p = WindowPlanner(5, 6, cap=10, lanes=1)
    w = p.take()
    assert w == Window(5, 6)
    assert p.truncated(w) is False
    assert p.unsplittable == [Window(5, 6)] and p.finished and p.covered == []


def test_windows_grow_where_sparse_and_shrink_where_dense() -> None:
    """After a sparse answer the next window is wider; after a dense one it is narrower."""
    p = WindowPlanner(0, 10_000, cap=100, lanes=1, fill=0.5, learned=[(0, 10_000, 10_000)])
    first = p.take()
    assert first == Window(0, 50)  # 1 product/s learned, 50 = half the cap
    p.complete(first, 5)
    second = p.take()
    assert second is not None and second.width == 400  # x8 at most
    p.complete(second, 80)
    third = p.take()
    assert third is not None and third.width == 250  # 400 * 50 / 80


def test_an_empty_window_grows_the_next_one_eightfold() -> None:
    """A 204 (count 0) widens the lane's next window by the maximum factor."""
    p = WindowPlanner(0, 10_000, cap=100, lanes=1, fill=0.5, learned=[(0, 10_000, 10_000)])
    w = p.take()
    assert w is not None
    p.complete(w, 0)
    nxt = p.take()
    assert nxt is not None and nxt.start == 50 and nxt.width == 400


def test_learned_density_splits_lanes_by_count() -> None:
    """Lanes hold equal estimated counts: a dense tail gets its own lanes."""
    learned = [(0, 900, 100), (900, 1000, 900)]
    p = WindowPlanner(0, 1000, cap=10_000, lanes=2, learned=learned)
    a, b = p.take(), p.take()
    assert a == Window(0, 945) and b == Window(945, 1000)
    assert estimate(learned, 0, 945) == pytest.approx(500, abs=10)


def test_an_idle_worker_steals_half_of_a_busy_lane() -> None:
    """With one lane busy and range left, a second window comes from a split of that range."""
    p = WindowPlanner(0, 1000, cap=100, lanes=1, fill=0.5, learned=[(0, 1000, 1000)])
    a = p.take()
    assert a == Window(0, 50)
    b = p.take()
    assert b == Window(525, 575)
    p.complete(a, 40)
    c = p.take()
    assert c is not None and c.start == 50 and c.end <= 525


def test_resume_plans_only_the_gaps() -> None:
    """Windows done before a crash are not fetched again."""
    p = WindowPlanner(0, 100, cap=10, lanes=1, done=[(0, 30), (60, 100)])
    assert p.take() == Window(30, 60)
    assert p.take() is None


def test_failure_leaves_the_range_uncovered() -> None:
    """A window that failed for good is recorded and not covered."""
    p = WindowPlanner(0, 100, cap=10, lanes=1)
    w = p.take()
    assert w is not None
    p.fail(w, "HTTP 500")
    assert p.finished and p.failed == {Window(0, 100): "HTTP 500"} and p.covered == []


def test_complete_refuses_a_full_count() -> None:
    """Calling complete with a count at the cap is a programming error, not a covered window."""
    p = WindowPlanner(0, 100, cap=10, lanes=1)
    w = p.take()
    assert w is not None
    with pytest.raises(ValueError):
        p.complete(w, 10)


def test_bad_arguments_are_refused() -> None:
    """An inverted range or a zero cap is refused at construction."""
    with pytest.raises(ValueError):
        WindowPlanner(10, 0, cap=10)
    with pytest.raises(ValueError):
        WindowPlanner(0, 10, cap=0)


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(0, 99_999), max_size=400).map(sorted),
    cap=st.integers(2, 40),
    lanes=st.integers(1, 6),
    parallel=st.integers(1, 8),
    seed=st.integers(0, 1000),
)
def test_every_product_is_in_exactly_one_complete_window(
    times: list[int], cap: int, lanes: int, parallel: int, seed: int
) -> None:
    """Any catalogue, cap, lane count and completion order: the windows tile the range exactly."""
    p = WindowPlanner(0, 100_000, cap=cap, lanes=lanes)
    drive(p, times, seed=seed, parallel=parallel)
    assert_partition(p, 0, 100_000)
    assert sum(n for _, _, n in p.covered) + sum(count_in(times, w) for w in p.unsplittable) == len(
        times
    )
    for w in p.unsplittable:
        assert w.width == 1 and count_in(times, w) >= cap
    for a, b, n in p.covered:
        assert n == count_in(times, Window(a, b)) < cap


def test_a_learned_plan_needs_close_to_the_fewest_requests() -> None:
    """With the density of an earlier run, requests stay within 2x of total/cap."""
    rng = random.Random(7)
    times = sorted(int(100_000 * rng.random() ** 3) for _ in range(50_000))
    cold = WindowPlanner(0, 100_000, cap=2000, lanes=4)
    drive(cold, times)
    warm = WindowPlanner(0, 100_000, cap=2000, lanes=4, learned=cold.covered)
    drive(warm, times)
    fewest = len(times) / 2000
    assert warm.requests <= 2 * fewest < cold.requests
    assert_partition(warm, 0, 100_000)


def test_learned_windows_merge_clips_old_ones_at_the_new_range() -> None:
    """A run's windows replace old ones inside its range; old ones across its edge are clipped."""
    from harvester.sources.dbk import _merge

    old = [(0, 100, 100), (100, 200, 50)]
    assert _merge(old, [(50, 150, 7)], 50, 150) == [[0, 50, 50], [50, 150, 7], [150, 200, 25]]
    assert _merge([], [(0, 10, 1), (10, 20, 2)], 0, 20) == [[0, 10, 1], [10, 20, 2]]


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 50), min_size=1, max_size=20),
    widths=st.lists(st.integers(1, 100), min_size=20, max_size=20),
    a=st.integers(-10, 2100),
    b=st.integers(-10, 2100),
)
def test_cumulative_density_equals_the_direct_estimate(
    counts: list[int], widths: list[int], a: int, b: int
) -> None:
    """The planner's O(log n) density agrees with summing the learned windows one by one."""
    from harvester.plan.density import Density

    learned, at = [], 0
    for n, w in zip(counts, widths, strict=False):
        learned.append((at, at + w, n))
        at += w
    lo, hi = min(a, b), max(a, b)
    assert Density(learned).between(lo, hi) == pytest.approx(estimate(learned, lo, hi))
