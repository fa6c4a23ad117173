"""rateheaders.read: every header family, any letter case, Retry-After in both forms."""

from __future__ import annotations

from harvester.engine.rateheaders import Reading, parse_sf_list, read, retry_after_seconds


def test_x_ratelimit_any_case_epoch_or_delta() -> None:
    """x-ratelimit-* in any case; reset above 10**9 is a UNIX time, else seconds."""
    r = read({"X-RateLimit-Limit": "20", "x-ratelimit-remaining": "3",
              "X-RATELIMIT-RESET": "1790000012"})  # fmt: skip
    assert (r.family, r.limit, r.remaining, r.reset, r.epoch) == (
        "x-ratelimit", 20, 3, 1790000012.0, True)  # fmt: skip
    d = read({"x-ratelimit-reset": "7"})
    assert (d.reset, d.epoch, d.coarse) == (7.0, False, True)
    assert read({"x-ratelimit-limit": "many"}).limit is None


def test_ietf_drafts_07_08_structured_fields() -> None:
    """RateLimit + RateLimit-Policy: r, t, q, w of the named policy."""
    r = read({"RateLimit": '"default";r=50;t=30', "RateLimit-Policy": '"default";q=100;w=60'})
    assert (r.family, r.limit, r.remaining, r.reset, r.window, r.epoch) == (
        "ietf", 100, 50, 30.0, 60.0, False)  # fmt: skip


def test_ietf_several_policies_the_tightest_wins() -> None:
    """Of a burst and a daily policy, the one allowing fewer requests per second now is read."""
    r = read({
        "ratelimit": '"burst";r=50;t=30, "daily";r=900;t=3000',
        "ratelimit-policy": '"burst";q=100;w=60, "daily";q=1000;w=86400',
    })  # fmt: skip
    assert (r.limit, r.remaining, r.reset, r.window) == (1000, 900, 3000.0, 86400.0)
    spent = read({"RateLimit": '"a";r=5;t=1, "b";r=0;t=20', "RateLimit-Policy": '"b";q=9;w=20'})
    assert (spent.remaining, spent.reset, spent.limit) == (0, 20.0, 9)


def test_ietf_drafts_up_to_06() -> None:
    """RateLimit-Limit / -Remaining / -Reset, the window from w= of the limit or the policy."""
    r = read({"RateLimit-Limit": "10", "RateLimit-Remaining": "4", "RateLimit-Reset": "2",
              "RateLimit-Policy": "10;w=5"})  # fmt: skip
    assert (r.family, r.limit, r.remaining, r.reset, r.window) == ("ietf6", 10, 4, 2.0, 5.0)
    assert read({"ratelimit-limit": "10, 10;w=1, 50;w=60"}).window == 1.0


def test_no_rate_headers_and_date() -> None:
    """An answer without rate headers reads as no family; Date is parsed either way."""
    r = read({"Date": "Thu, 01 Jan 2026 00:00:10 GMT", "Content-Type": "application/json"})
    assert r == Reading(date=1767225610.0)


def test_retry_after_seconds_or_http_date() -> None:
    """Retry-After in seconds, or as an HTTP date measured against the server's clock."""
    assert retry_after_seconds("5", 0.0) == 5.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:10 GMT", 1767225600.0) == 10.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:10 GMT", 1767225700.0) == 0.0
    assert retry_after_seconds("soon", 0.0) is None


def test_structured_list_keeps_quoted_commas() -> None:
    """A comma inside a quoted policy name does not split the list."""
    assert parse_sf_list('"a,b";q=1;w=2, c;q=3') == [("a,b", {"q": "1", "w": "2"}),
                                                      ("c", {"q": "3"})]  # fmt: skip
