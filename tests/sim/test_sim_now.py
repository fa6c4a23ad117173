"""The simulated world is a function of its seed and an injected "now", never of today's date."""

from __future__ import annotations

import argparse
import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest

from harvester.sim import cli
from harvester.sim.books import BookCatalogue
from harvester.sim.catalogue import NobbCatalogue
from harvester.sim.settings import DEFAULT_NOW, SimSettings
from tests.clocks import NOWS

_EPOCH = date(1970, 1, 1)


def _digest(nobb: NobbCatalogue, books: BookCatalogue) -> str:
    h = hashlib.sha256()
    for column in (nobb.keys, nobb.modified, nobb.created, nobb.owner, books.times, books.serial):
        h.update(column.tobytes())
    for pos in range(0, nobb.size, 7):
        h.update(nobb.render(pos))
    for chunk in books.message(range(0, books.size, 5), sent=1_790_000_000, number=3):
        h.update(chunk)
    return h.hexdigest()


def test_default_world_is_unchanged_byte_for_byte() -> None:
    """The default now (2026-11-20) builds exactly the world the fixed calendar built before."""
    # The digest of the world as built before "now" existed (catalogues ending 2026-11-20).
    nobb = NobbCatalogue(5000, 1)
    books = BookCatalogue(4000, 1, bulk_second=True)
    assert _digest(nobb, books) == _digest(
        NobbCatalogue(5000, 1, now=DEFAULT_NOW),
        BookCatalogue(4000, 1, bulk_second=True, now=DEFAULT_NOW),
    )
    assert _digest(nobb, books) == (
        "145437e0c9108bcb0f6a4c650d05bcb68b8bd25f578bba5eecd7954d4377406e"
    )


@pytest.mark.parametrize("now", NOWS[1:], ids=lambda n: n.isoformat())
def test_another_now_shifts_every_date_and_nothing_postdates_it(now: datetime) -> None:
    """Every change date moves by now's distance from the default; none lies after now."""
    base_nobb, base_books = NobbCatalogue(3000, 4), BookCatalogue(3500, 4, bulk_second=True)
    nobb, books = NobbCatalogue(3000, 4, now=now), BookCatalogue(3500, 4, bulk_second=True, now=now)
    days = (now.date() - DEFAULT_NOW.date()).days
    assert list(nobb.keys) == list(base_nobb.keys)
    assert [m - days for m in nobb.modified] == list(base_nobb.modified)
    assert [c - days for c in nobb.created] == list(base_nobb.created)
    assert _EPOCH + timedelta(days=max(nobb.modified)) == now.date()
    seconds = int(now.timestamp()) - int(DEFAULT_NOW.timestamp())
    assert [t - seconds for t in books.times] == list(base_books.times)
    assert max(books.times) <= now.timestamp() and books.end == int(now.timestamp())
    assert (
        base_books.bulk_second is not None and books.bulk_second == base_books.bulk_second + seconds
    )


def test_settings_and_flag_take_now() -> None:
    """`--now` takes an ISO date, date-time (no offset: UTC) or 'now'; the default is fixed."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    for text, want in [
        ("2028-02-29", datetime(2028, 2, 29, tzinfo=UTC)),
        ("2026-12-31T23:59:30Z", datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)),
        ("2026-12-01T01:00:00+01:00", datetime(2026, 12, 1, tzinfo=UTC)),
    ]:
        assert cli.settings_from(parser.parse_args(["--now", text])).now == want
    assert cli.settings_from(parser.parse_args([])).now == DEFAULT_NOW  # never today's date
    current = cli.settings_from(parser.parse_args(["--now", "now"])).now
    assert current.tzinfo is not None and current.microsecond == 0
    assert abs(current.timestamp() - datetime.now(UTC).timestamp()) < 60
    with pytest.raises(ValueError, match="must carry a timezone"):
        SimSettings(now=datetime(2026, 11, 20))
    assert SimSettings().now == DEFAULT_NOW


def test_bad_now_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A `--now` that is no ISO date is refused with exit 2, naming the value."""
    parser = argparse.ArgumentParser(prog="harvester simulate")
    cli.add_arguments(parser)
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--now", "yesterday"])
    assert exc.value.code == 2
    assert "not an ISO date or date-time: 'yesterday'" in capsys.readouterr().err


def test_bulk_second_is_opt_in() -> None:
    """No crowded second by default; `--bulk-second` opts in; `--no-bulk-second` is accepted."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert SimSettings().dbk_bulk_second is False
    assert cli.settings_from(parser.parse_args([])).dbk_bulk_second is False
    assert cli.settings_from(parser.parse_args(["--bulk-second"])).dbk_bulk_second is True
    assert cli.settings_from(parser.parse_args(["--no-bulk-second"])).dbk_bulk_second is False
    books = BookCatalogue(8000, 1)
    assert books.bulk_second is None
    crowded = max(sum(1 for _ in group) for group in _runs(list(books.times)))
    assert crowded <= 2000  # every second fits in one response: the world is harvestable
    assert BookCatalogue(8000, 1, bulk_second=True).bulk_second is not None


def _runs(values: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1].append(v)
        else:
            out.append([v])
    return out
