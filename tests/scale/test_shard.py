"""Identity sharding: one person (rows linked through any shared key) in one shard,
rows in input order, shards balanced."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactsync._scale._shard import Row, chunks, components, shard


def _row(index: int, *keys: str) -> Row:
    return Row(index, {"n": index}, tuple(keys))


def test_rows_linked_through_a_chain_of_keys_are_one_component() -> None:
    rows = [
        _row(0, "external_id=a", "email=x"),
        _row(1, "external_id=b"),
        _row(2, "email=x", "phone=1"),
        _row(3, "phone=1", "external_id=c"),
        _row(4),
    ]
    groups = [[row.index for row in group] for group in components(rows)]
    assert groups == [[0, 2, 3], [1], [4]]


def test_a_person_far_apart_stays_in_one_shard_in_order() -> None:
    rows = [_row(i, f"email={i % 50}") for i in range(1000)]
    shards = shard(rows, 7)
    assert len(shards) == 7
    owner: dict[str, int] = {}
    for number, rows_of_shard in enumerate(shards):
        assert [r.index for r in rows_of_shard] == sorted(r.index for r in rows_of_shard)
        for row in rows_of_shard:
            assert owner.setdefault(row.identity[0], number) == number
    sizes = sorted(len(s) for s in shards)
    assert sizes[-1] - sizes[0] <= 20  # components of 20 rows each, greedily balanced


def test_fewer_components_than_shards_gives_fewer_shards() -> None:
    rows = [_row(i, "external_id=same") for i in range(10)]
    assert [[r.index for r in s] for s in shard(rows, 4)] == [list(range(10))]


def test_chunks_keep_order_and_cover_every_row() -> None:
    rows = [_row(i) for i in range(11)]
    assert [[r.index for r in c] for c in chunks(rows, 4)] == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9, 10],
    ]
    with pytest.raises(ValueError, match="chunk size"):
        chunks(rows, 0)
    with pytest.raises(ValueError, match="shards"):
        shard(rows, 0)


keys = st.lists(st.sampled_from([f"k={n}" for n in range(12)]), max_size=3)


@given(st.lists(keys, max_size=60), st.integers(min_value=1, max_value=6))
def test_no_key_is_ever_in_two_shards(identities: list[list[str]], count: int) -> None:
    rows = [_row(i, *ids) for i, ids in enumerate(identities)]
    shards = shard(rows, count)
    assert sorted(r.index for s in shards for r in s) == list(range(len(rows)))
    owner: dict[str, int] = {}
    for number, rows_of_shard in enumerate(shards):
        assert [r.index for r in rows_of_shard] == sorted(r.index for r in rows_of_shard)
        for row in rows_of_shard:
            for key in row.identity:
                assert owner.setdefault(key, number) == number
