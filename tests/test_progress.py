"""Progress: the plain line a cron mail shows, and a reporter that stops cleanly."""

from __future__ import annotations

import io

from harvester.progress import Progress, Reporter


def test_line_shows_counts_rates_and_eta() -> None:
    """The line carries records, partitions, MB/s, req/s with the limit, 429s, retries, ETA."""
    p = Progress(source="nobb", started=100.0, records=5000, expected=10_000, bytes_in=20_000_000,
                 requests=50, throttled=2, retries=3, partitions_done=1, partitions_total=4,
                 limit="600/60s")  # fmt: skip
    assert p.line(now=110.0) == (
        "nobb: 5,000 records, partitions 1/4, 2.0 MB/s, 5.0 req/s (limit 600/60s), "
        "429s 2, retries 3, ETA 0m10s"
    )


async def test_reporter_off_a_terminal_is_quiet_unless_asked() -> None:
    """Off a terminal, auto mode prints nothing; closing twice is fine."""
    out = io.StringIO()
    reporter = Reporter([Progress(source="nobb")], mode="auto", stream=out, interval=0.01)
    async with reporter:
        assert not reporter.enabled
    await reporter.aclose()
    assert out.getvalue() == ""
