"""HiddenQuota on a fake clock: a quota shown only by 429s, learned and paced by."""

from __future__ import annotations

import asyncio
import email.utils

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harvester.engine.rateadaptive import BACKOFF_INTERVALS
from harvester.engine.ratecubic import CubicRate
from harvester.engine.ratefit import NO_FIT, Fit, fit_fixed, fit_sliding, fixed_limit, holds
from harvester.engine.ratelearn import HiddenQuota
from harvester.engine.ratephase import Named, refusal_end
from harvester.engine.rateskew import ServerClock
from tests import ratesim

START = 1_790_000_000.0


def test_nothing_is_paced_before_a_refusal() -> None:
    """Until a 429, every request may leave at once."""
    q = HiddenQuota()
    for seq in range(1, 50):
        q.sent(seq, 0.0)
    assert q.next_allowed(0.0, 0.0) == 0.0 and not q.active


def test_a_refusal_closes_until_its_retry_after_and_echoes_cut_once() -> None:
    """The first 429 closes the API until the end Retry-After names; refusals of requests
    already on their way narrow that end (to where all their bounds meet) but do not cut the
    rate again."""
    q = HiddenQuota(rand=lambda: 0.0)
    for seq in range(1, 25):
        q.sent(seq, seq * 0.01)
        q.answered(seq, seq * 0.01 + 0.05, True)
    for seq in (25, 26, 27):
        q.sent(seq, 0.3)
    q.refused_at(25, 0.35, (1.3, 2.35))
    rate = q.rate
    q.refused_at(26, 0.36, (1.31, 2.36))
    q.refused_at(27, 0.37, (1.32, 2.37))
    assert q.rate == rate and q.blocked_until == 2.35
    assert q.next_allowed(1.0, 0.3) >= 2.35


def test_without_retry_after_the_backoff_doubles() -> None:
    """No Retry-After: closed 1 s, then 2 s for a refusal with none allowed between (jitter
    takes off up to half: none here)."""
    q = HiddenQuota(rand=lambda: 0.0)
    q.sent(1, 0.0)
    q.refused_at(1, 0.1, None)
    assert q.blocked_until == 1.1
    q.sent(2, 1.1)
    q.refused_at(2, 1.2, None)
    assert q.blocked_until == 3.2


def _run(**kw: object) -> ratesim.Outcome:
    base: dict[str, object] = {"limit": 20, "window": 2.0, "seconds": 60.0, "latency": 0.05,
                               "hidden": True, "start": START}  # fmt: skip
    base.update(kw)
    return asyncio.run(ratesim.run(**base))  # type: ignore[arg-type]


def test_a_long_fixed_window_is_read_off_the_retry_after_ends() -> None:
    """19 per 20 s, Retry-After as a date: the ends fit one phase; the limit and window are
    inferred and the windows after the first refusal are used to at least 95 %."""
    out = _run(limit=19, window=20.0, seconds=400.0, retry_after="date")
    q = out.limiter.policy.hidden
    assert (q.kind, q.limit) == ("fixed", 19) and abs((q.window or 0) - 20.0) < 0.2
    assert out.utilization(19, (out.first_refusal or 0) + 1, 19) >= 0.95
    assert out.limiter.report()["learned_from"] == "429"


def test_a_quota_that_falls_is_followed_down_and_one_that_rises_up() -> None:
    """20 per 2 s falling to 10, then 10 rising to 20: the windows after the change are held to
    the new quota (few refusals), and the rise is used (more than the old limit per window)."""
    down = _run(retry_after="seconds", change_after=200, change_to=10, seconds=80.0)
    late = [down.served.get(w, 0) for w in range(30, 39)]
    assert max(late) <= 10 and down.refused <= 0.06 * down.sent
    up = _run(limit=10, retry_after="seconds", change_after=100, change_to=20, seconds=80.0)
    assert sum(up.served.get(w, 0) for w in range(30, 39)) / 9 > 12


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    limit=st.integers(5, 40),
    window=st.sampled_from([1.0, 2.0, 5.0, 20.0]),
    workers=st.integers(1, 8),
    latency=st.floats(0.001, 0.1),
    sliding=st.booleans(),
    retry_after=st.sampled_from(["seconds", "date"]),
    phase=st.floats(0.0, 1.0),
)
def test_the_pace_never_draws_a_429_storm(
    limit: int, window: float, workers: int, latency: float, sliding: bool,
    retry_after: ratesim.RetryAfter, phase: float,
) -> None:  # fmt: skip
    """A hidden fixed or sliding quota with Retry-After, any in-flight count, round trips up to a
    tenth of the window: refusals are at most twice the walks in flight (the first refusal's
    echoes) plus 12 % of the requests."""
    assume(latency <= window / 10)
    out = _run(limit=limit, window=window, seconds=window * 20, workers=workers,
               latency=latency * window, sliding=sliding, retry_after=retry_after,
               start=START + phase)  # fmt: skip
    assert out.refused <= 2 * workers + 0.12 * out.sent, out


def test_fixed_window_read_off_ends_at_one_phase() -> None:
    """Ends 2 s apart at one phase, each refusal after 5 allowed in its window: a fixed window
    of 2 s, ending on even seconds, with a limit of 5."""
    allowed = [w + 0.1 * i for w in (8.0, 12.0, 18.0) for i in range(1, 6)]
    refused = [w + 0.6 for w in (8.0, 12.0, 18.0)]
    ends = [(9.95, 10.0), (13.95, 14.0), (19.95, 20.0)]
    fit = fit_fixed(ends, (1.35, 1.4), allowed, refused)
    assert fit is not None and fit.kind == "fixed"
    assert abs(fit.window - 2.0) < 0.02 and abs((fit.end + 0.01) % 2.0) < 0.06
    assert fixed_limit(fit, allowed, refused) == 5
    assert (
        fit_fixed(ends[:2], (1.35, 1.4), allowed, refused) is None
    )  # two ends fit too many lengths


def test_ends_at_no_common_phase_fit_no_fixed_window() -> None:
    """Three ends whose gaps share no length near the time-to-end seen: no fixed window."""
    assert fit_fixed([(1.9, 2.0), (4.6, 4.7), (7.9, 8.0)], (1.8, 1.9), [0.0], [0.5]) is NO_FIT


def test_sliding_window_read_off_its_oldest_requests() -> None:
    """Each refusal names the moment the 3rd latest allowed request leaves, 2 s after it came:
    a sliding window of 3 per 2 s."""
    allowed = [0.0, 0.1, 0.2, 2.0, 2.1, 2.2, 4.0, 4.1, 4.2]
    refusals = [(0.3, 1.95, 2.0), (2.3, 3.95, 4.0), (4.3, 5.95, 6.0)]
    fit = fit_sliding(refusals, (1.65, 1.7), allowed)
    assert fit is not None and (fit.kind, fit.limit) == ("sliding", 3)
    assert 1.9 <= fit.window <= 2.05


def test_adaptive_rate_is_cut_then_regrows_along_a_cubic() -> None:
    """A refusal cuts the rate to 0.9 of what the server allowed; it is back there after k
    seconds and grows on beyond it; the next cut starts from the lesser of curve and allowed."""
    c = CubicRate()
    c.cut(now=10.0, allowed_rate=10.0, k=4.0)
    assert (round(c.at(10.0), 6), round(c.at(14.0), 6)) == (9.0, 10.0)
    assert c.at(16.0) > 10.0
    c.cut(now=16.0, allowed_rate=8.0, k=4.0)
    assert round(c.at(16.0), 6) == 7.2


def _fitted(limit: int = 3) -> HiddenQuota:
    """A quota already read as ``limit`` per fixed 2 s window ending at 10 + 2k (0.1 s round
    trips), with this window's ``limit`` requests allowed."""
    q = HiddenQuota(rand=lambda: 0.0)
    q.active, q.fit, q.limit = True, Fit("fixed", 2.0, 0.05, end=10.0), limit
    for seq in range(1, limit + 1):
        q.sent(seq, 10.0 + 0.1 * seq)
        q.answered(seq, 10.1 + 0.1 * seq, True)
    return q


def test_under_a_fitted_window_a_refusal_reopens_at_its_edge_not_the_rounded_retry_after() -> None:
    """Retry-After "2" (whole seconds) at 10.55 names an end in (11.5, 12.6]: the fitted edge
    (12.0, plus its margin, less the way there) reopens the API, never before 11.5."""
    q = _fitted()
    q.sent(4, 10.5)
    q.refused_at(4, 10.6, (11.5, 12.6))
    assert q.blocked_until == pytest.approx(12.0)
    assert q.limit == 3 and q.fit is not None


def test_a_refusal_never_reopens_before_the_end_its_retry_after_allows() -> None:
    """Where the fitted window has room sooner than Retry-After's lower bound, that bound holds:
    nothing leaves before the server's stated time less its rounding."""
    q = _fitted()
    q.sent(4, 10.5)
    q.refused_at(4, 10.6, (12.4, 13.6))  # a phase the fit does not know: 12.4 at the earliest
    assert 12.4 <= q.blocked_until <= 13.6


def test_a_lower_quota_is_read_from_the_window_it_dropped_in() -> None:
    """A refusal after fewer requests than the fitted limit lowers it at once, and the windows
    before (which allowed more) no longer count in reading the window again."""
    q = HiddenQuota(rand=lambda: 0.0)
    q.active, q.fit, q.limit = True, Fit("fixed", 2.0, 0.05, end=10.0), 5
    times = [8.1, 8.2, 8.3, 8.4, 8.5, 10.1, 10.2, 10.3]  # 5 in the window before, 3 in this one
    for seq, t in enumerate(times, 1):
        q.sent(seq, t)
        q.answered(seq, t + 0.1, True)
    q.sent(9, 10.5)
    q.refused_at(9, 10.6, (11.5, 12.6))
    assert q.limit == 3
    allowed, refused = q.arrivals.latest()
    assert min(allowed) >= 10.0 and len(allowed) == 3 and len(refused) == 1


def test_under_the_adaptive_rate_a_refusal_without_retry_after_closes_briefly() -> None:
    """No Retry-After once the adaptive rate runs: closed for a few intervals (at most 1 s) of
    the pace the refusal met, where the first refusal closed for 1 s."""
    q = HiddenQuota(rand=lambda: 0.0)
    for seq in range(1, 21):
        q.sent(seq, 0.05 * seq)
        q.answered(seq, 0.05 * seq + 0.05, True)
    q.sent(21, 1.1)
    q.refused_at(21, 1.15, None)
    assert q.blocked_until == pytest.approx(2.15) and q.rate is not None
    q.sent(22, 2.2)
    q.answered(22, 2.25, True)
    q.sent(23, 2.3)
    rate = q.rate  # the pace the refusal met
    assert rate is not None
    q.refused_at(23, 2.35, None)
    assert q.blocked_until == pytest.approx(2.35 + min(1.0, BACKOFF_INTERVALS / rate))
    assert q.blocked_until < 3.35  # not the second second of a doubling backoff


def test_a_refusal_naming_another_end_moves_the_phase_not_the_limit() -> None:
    """A refusal just after a fitted edge whose Retry-After names an end the fit does not
    (the real edge came a little later): the limit stands; it is not what the new window held."""
    q = _fitted(limit=3)
    q.sent(4, 11.97)  # arrives at 12.02 by our estimate: the fit puts it in the next window
    q.refused_at(4, 12.07, (12.0, 13.07))
    assert q.limit == 3


def _burst(q: HiddenQuota, n: int = 20) -> None:
    """``n`` requests sent 10 ms apart from 0, each allowed after a 50 ms round trip."""
    for seq in range(1, n + 1):
        q.sent(seq, 0.01 * seq)
        q.answered(seq, 0.01 * seq + 0.05, True)


def test_a_whole_second_retry_after_reopens_at_the_middle_of_its_bounds() -> None:
    """Retry-After "2" rounds the end up to a whole second, so the end is as likely early as late
    in its bounds (1.25, 2.3]: one request goes at their middle; a date reopens at the top."""
    q = HiddenQuota(rand=lambda: 0.0)
    _burst(q)
    q.sent(21, 0.25)
    q.refused_at(21, 0.3, (1.25, 2.3), rounded=True)
    assert q.blocked_until == pytest.approx(1.775)
    d = HiddenQuota(rand=lambda: 0.0)
    _burst(d)
    d.sent(21, 0.25)
    d.refused_at(21, 0.3, (1.25, 2.3))
    assert d.blocked_until == pytest.approx(2.3)


def test_a_refused_request_at_the_middle_narrows_the_end_from_below() -> None:
    """The request at the middle is refused: the end lies after it left (1.775), whatever its
    own Retry-After's bounds say (here from 1.3)."""
    q = HiddenQuota(rand=lambda: 0.0)
    _burst(q)
    q.sent(21, 0.25)
    q.refused_at(21, 0.3, (1.25, 2.3), rounded=True)
    q.sent(22, 1.775)
    q.refused_at(22, 1.825, (1.3, 2.35))
    assert q.ends.ends == [(1.775, 2.3)]


def test_the_first_request_allowed_after_a_refusal_bounds_the_end_from_above() -> None:
    """Allowed after the refusal, a request shows the end it named had passed when it arrived:
    the end's bounds close at its answer; a request sent before the refusal shows nothing."""
    q = HiddenQuota(rand=lambda: 0.0)
    _burst(q)
    q.sent(21, 0.25)
    q.sent(22, 0.26)
    q.refused_at(21, 0.3, (1.25, 2.3), rounded=True)
    q.answered(22, 0.31, True)  # on its way before the refusal: says nothing of the end
    assert q.ends.ends == [(1.25, 2.3)]
    q.sent(23, 1.775)
    q.answered(23, 1.825, True)
    assert q.ends.ends == [(1.25, 1.825)]


def test_a_lower_quota_keeps_the_fitted_window() -> None:
    """The quota falls under a fitted fixed window: the limit falls to what this window held and
    the window keeps its length and phase (the pace holds to the new limit at once)."""
    q = _fitted(limit=5)  # the window ending at 12 held 5
    q.sent(7, 12.1)
    q.answered(7, 12.2, True)
    q.sent(8, 12.2)
    q.answered(8, 12.3, True)
    q.sent(9, 12.3)
    q.refused_at(9, 12.4, (13.4, 14.4), rounded=True)
    assert q.limit == 2 and q.fit == Fit("fixed", 2.0, 0.05, end=10.0)
    assert q.next_allowed(14.0, 12.3) >= 14.0


def test_the_first_cut_is_not_watered_down_by_an_idle_stretch() -> None:
    """One request, 1.5 s idle, then 20 in 0.2 s and a refusal naming an end at 2 s: the first
    cut starts from the burst's rate (20 over 1.8 s until the end), not from 21 over 3.3 s."""
    q = HiddenQuota(rand=lambda: 0.0)
    q.sent(1, -1.5)
    q.answered(1, -1.45, True)
    for seq in range(2, 22):
        q.sent(seq, 0.2 + 0.01 * seq)
        q.answered(seq, 0.25 + 0.01 * seq, True)
    q.sent(22, 0.45)
    q.refused_at(22, 0.5, (1.45, 2.0))
    assert q.rate == pytest.approx(0.9 * 20 / (2.0 - 0.22))


def test_a_narrowed_end_lengthens_the_time_to_it_from_the_first_refusal() -> None:
    """A refusal at 0.05 names (1.0, 2.05]; one at 1.5 narrows that end to (1.5, 2.05]: the
    window is at least 1.45 s long (from the first refusal to the end's lower bound)."""
    q = HiddenQuota(rand=lambda: 0.0)
    _burst(q, 4)
    q.sent(5, 0.0)
    q.refused_at(5, 0.05, (1.0, 2.05), rounded=True)
    assert q.ends.time_to_end[0] == pytest.approx(0.95)
    q.sent(6, 1.5)
    q.refused_at(6, 1.55, (1.5, 2.55), rounded=True)
    assert q.ends.ends == [(1.5, 2.05)] and q.ends.time_to_end[0] == pytest.approx(1.45)


def test_refusal_end_reads_retry_after() -> None:
    """Whole seconds bound the end to the second before (rounded); a date to the second before
    it on the server's clock; a wait beyond the cap holds for the cap and names no end."""
    clock = ServerClock()
    named = refusal_end("2", 10.0, 10.1, START, clock, 3600.0)
    assert named == Named((11.0, 12.1), rounded=True)
    date = email.utils.formatdate(START + 3, usegmt=True)
    assert refusal_end(date, 10.0, 10.1, START, clock, 3600.0) == Named((12.1, 13.1))
    assert refusal_end("7200", 10.0, 10.1, START, clock, 3600.0) == Named(hold=3600.0)
    assert refusal_end(None, 10.0, 10.1, START, clock, 3600.0) == Named()


def test_a_fixed_fit_holds_ends_on_its_edges_within_its_margin() -> None:
    """Edges at 10 + 2k, margin 0.05: ends around 12 and 16 hold, one around 13 does not; an
    end many windows before the fit's own is not looked at."""
    fit = Fit("fixed", 2.0, 0.05, end=10.0)
    assert holds(fit, [(11.9, 12.5), (15.96, 16.2)])
    assert not holds(fit, [(11.9, 12.5), (12.6, 13.4)])
    assert holds(fit, [(-1.0, -0.5), (11.9, 12.5)])


def test_a_fitted_window_stays_while_the_ends_hold_it() -> None:
    """Under a fitted window, refusals whose ends fall on its edges but read no single window
    (too few ends) leave the fit as it was."""
    q = _fitted(limit=3)
    q.sent(4, 10.5)
    q.refused_at(4, 10.6, (11.5, 12.6), rounded=True)
    assert q.fit == Fit("fixed", 2.0, 0.05, end=10.0) and q.limit == 3


def test_a_limit_lowered_in_two_windows_in_a_row_drops_the_fit() -> None:
    """Refused early in two fitted windows in a row: not a quota that fell twice but edges
    read off; the fit goes and the adaptive rate takes over."""
    q = _fitted(limit=5)  # the window ending at 12 held 5
    for seq, t in ((6, 12.1), (7, 12.2)):
        q.sent(seq, t)
        q.answered(seq, t + 0.1, True)
    q.sent(8, 12.3)
    q.refused_at(8, 12.4, (13.4, 14.4), rounded=True)
    assert q.limit == 2 and q.fit is not None
    q.sent(9, 14.1)
    q.answered(9, 14.2, True)
    q.sent(10, 14.2)
    q.refused_at(10, 14.3, (15.3, 16.3), rounded=True)
    dropped = q.fit is None
    assert dropped and q.rate is not None


def test_the_first_cut_is_redone_when_the_end_proves_earlier() -> None:
    """The first cut counts 20 allowed until the end's upper bound (2.3); the request at the
    middle (1.775) is allowed, so the end had passed by 1.825: the cut is redone counting to
    there, with the request on its way at the refusal and allowed after it (21 in all)."""
    q = HiddenQuota(rand=lambda: 0.0)
    _burst(q)
    q.sent(21, 0.25)
    q.sent(22, 0.26)
    q.refused_at(21, 0.3, (1.25, 2.3), rounded=True)
    assert q.rate == pytest.approx(0.9 * 20 / (2.3 - 0.01))
    q.answered(22, 0.31, True)
    q.sent(23, 1.775)
    q.answered(23, 1.825, True)
    assert q.rate == pytest.approx(0.9 * 21 / (1.825 - 0.01))


def test_a_request_refused_at_the_middle_does_not_cut_the_rate_again() -> None:
    """The request at the middle of the end's bounds is refused: the end is later than it,
    nothing more; the rate stays where the first refusal cut it."""
    q = HiddenQuota(rand=lambda: 0.0)
    _burst(q)
    q.sent(21, 0.25)
    q.sent(22, 0.26)
    q.refused_at(21, 0.3, (1.25, 2.3), rounded=True)
    rate = q.rate
    q.answered(22, 0.31, True)  # on its way before the refusal
    q.sent(23, 1.775)
    q.refused_at(23, 1.825, (1.775, 2.825), rounded=True)
    assert q.rate == rate
