"""LatestVersions: which records the catch-up meets again count as newer versions."""

from __future__ import annotations

from harvester.store.latest import LatestVersions


def test_a_changed_record_is_kept_as_newer() -> None:
    """A line met again that differs from what was written is a newer version."""
    latest = LatestVersions()
    latest.met_again(1, b'{"id":1,"v":2}')
    assert latest.newer == {1: b'{"id":1,"v":2}'} and latest.note() is None


def test_an_unchanged_fingerprinted_record_is_not_newer() -> None:
    """A start-day record met again byte for byte is not rewritten; a changed one is."""
    latest = LatestVersions()
    latest.fingerprint(1, b'{"id":1,"v":1}')
    latest.fingerprint(2, b'{"id":2,"v":1}')
    latest.met_again(1, b'{"id":1,"v":1}')
    latest.met_again(2, b'{"id":2,"v":2}')
    assert latest.newer == {2: b'{"id":2,"v":2}'}


def test_a_record_the_catch_up_wrote_first_is_not_newer() -> None:
    """A repeat of a key the catch-up itself wrote (a retried page) is not a newer version."""
    latest = LatestVersions()
    latest.written(3)
    latest.met_again(3, b"x")
    assert latest.newer == {}


def test_past_the_limit_newer_versions_are_counted_and_noted() -> None:
    """Beyond the limit the rest keep their first version, and the manifest note says so."""
    latest = LatestVersions(limit=2)
    for key in range(5):
        latest.met_again(key, b"v2")
    latest.met_again(0, b"v3")  # a key already kept is updated, not dropped
    assert latest.newer == {0: b"v3", 1: b"v2"} and latest.dropped == 3
    assert latest.note() == (
        "3 records changed during the run beyond the first 2: they keep the version first "
        "seen; the next sync carries them"
    )
