"""Progress: the plain line a cron mail shows, the policy in force in words, the share done."""

from __future__ import annotations

import io

import pytest

from harvester.progress import Progress, Reporter, policy_in_force


def test_line_shows_counts_share_rates_policy_and_eta() -> None:
    """The line carries records and share, partitions, MB/s, req/s with the policy in force,
    429s, retries, ETA."""
    report = {"limit": 600, "window": 60.0, "kind": "sliding", "requests": 50, "ceiling": None}
    p = Progress(source="nobb", started=100.0, records=5000, expected=10_000, bytes_in=20_000_000,
                 requests=50, throttled=2, retries=3, partitions_done=1, partitions_total=4,
                 rate=lambda: report)  # fmt: skip
    assert p.line(now=110.0) == (
        "nobb: 5,000 records (50%), partitions 1/4, 2.0 MB/s, 5.0 req/s (policy 600/60s sliding), "
        "429s 2, retries 3, ETA 0m10s"
    )


@pytest.mark.parametrize(
    ("report", "text"),
    [
        ({"limit": 30, "window": 10.0, "kind": "fixed", "requests": 3}, "30/10s fixed"),
        ({"limit": 30, "window": 9.9, "kind": "fixed", "requests": 3}, "30/10s fixed"),
        ({"limit": 10, "window": 1.5, "kind": "sliding", "requests": 3}, "10/1.5s sliding"),
        ({"limit": 30, "window": None, "kind": "fixed", "requests": 3}, "30/?s fixed"),
        ({"limit": 20, "window": 2.0, "kind": None, "learned_from": "429", "requests": 9},
         "learned 20/2s"),
        ({"limit": None, "window": None, "kind": None, "learned_from": "429", "rate": 4.95,
          "requests": 9}, "learned 5.0/s adaptive"),
        ({"limit": None, "window": None, "kind": None, "learned_from": None, "requests": 9},
         "none announced"),
        ({"kind": None, "ceiling": "10/1s", "requests": 1}, "none announced, ceiling 10/1s"),
        ({"limit": 30, "window": 10.0, "kind": "fixed", "ceiling": "2/1s", "requests": 1},
         "30/10s fixed, ceiling 2/1s"),
        ({"kind": None, "requests": 0}, ""),
    ],
)  # fmt: skip
def test_policy_in_force_in_words(report: dict[str, object], text: str) -> None:
    """Announced, learned from 429s, none announced, with a ceiling, or nothing asked yet."""
    assert policy_in_force(report) == text
    assert policy_in_force(report, short=True) == text.split(", ceiling")[0]


def test_share_counts_a_resumes_kept_records_and_prefers_the_time_range() -> None:
    """A resumed NOBB run's share counts the kept records; DBK's is its time range covered."""
    nobb = Progress(source="nobb", records=100, before=300, expected=800)
    assert nobb.fraction() == 0.5
    dbk = Progress(source="dbk", records=5, expected=1000, span_total=400, span_done=100)
    assert dbk.fraction() == 0.25
    assert Progress(source="nobb").fraction() is None


async def test_reporter_off_a_terminal_is_quiet_unless_asked() -> None:
    """Off a terminal, auto mode prints nothing; closing twice is fine."""
    out = io.StringIO()
    reporter = Reporter([Progress(source="nobb")], mode="auto", stream=out, interval=0.01)
    async with reporter:
        assert not reporter.enabled
    await reporter.aclose()
    assert out.getvalue() == ""
