"""KeySet: behaves as a set of int and str keys, in compact storage."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from harvester.store.keyset import KeySet, encode_key

keys = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.text(max_size=20))


@given(st.lists(keys, max_size=400), st.integers(min_value=1, max_value=50))
def test_matches_a_plain_set(items: list[int | str], merge_at: int) -> None:
    """add() answers exactly as a Python set would, across merges into the sorted array."""
    ks = KeySet(merge_at=merge_at)
    plain: set[int | str] = set()
    for item in items:
        assert ks.add(item) == (item not in plain)
        plain.add(item)
    assert len(ks) == len(plain)
    assert all(item in ks for item in plain)


def test_numeric_and_string_keys_never_collide() -> None:
    """A numeric key and a string of the same digits are different keys."""
    ks = KeySet([10002681])
    assert "10002681" not in ks
    assert ks.add("10002681") is True
    assert encode_key(10002681) == 10002681
    assert encode_key("10002681") < 0


def test_membership_after_merge() -> None:
    """Keys stay findable after the recent set is merged into the sorted array."""
    ks = KeySet(range(0, 3000, 3), merge_at=64)
    assert len(ks) == 1000
    assert 2997 in ks
    assert 2998 not in ks
    assert ks.nbytes() >= 8 * 900


@given(
    st.one_of(st.lists(keys, max_size=300), st.lists(st.integers(0, 400), max_size=300)),
    st.integers(min_value=1, max_value=50),
    st.data(),
)
def test_add_many_answers_as_add_one_by_one(
    items: list[int | str], merge_at: int, data: st.DataObject
) -> None:
    """add_many() over any chunking answers and stores exactly as add() key by key."""
    one, many = KeySet(merge_at=merge_at), KeySet(merge_at=merge_at)
    expected = [one.add(item) for item in items]
    got: list[bool] = []
    pos = 0
    while pos < len(items):
        n = data.draw(st.integers(min_value=1, max_value=40))
        got += many.add_many(items[pos : pos + n])
        pos += n
    assert got == expected
    assert len(many) == len(one)
    assert all(item in many for item in items)
