"""fingerprint() and raw_hash(): stable, key-order independent, type-aware."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactsync._state import fingerprint, raw_hash

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def test_known_value_never_changes() -> None:
    # Changing the encoding or the hash resends every contact of every user once:
    # do it on purpose, never by accident.
    assert fingerprint({"b": 1, "a": [1, "x", None]}) == fingerprint({"a": [1, "x", None], "b": 1})
    assert fingerprint({"a": 1}) == "b415c120a52d2371e4951d820f913bf5"
    assert raw_hash(b'{"a":1}') == "459ef01219203546092ac7f5258c4c5e"


def test_shape() -> None:
    value = fingerprint({"a": 1})
    assert len(value) == 32
    assert int(value, 16) >= 0


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=8), st.randoms())
def test_key_order_does_not_matter(payload: dict[str, Any], rnd: Any) -> None:
    items = list(payload.items())
    rnd.shuffle(items)
    assert fingerprint(dict(items)) == fingerprint(payload)
    assert fingerprint({"outer": dict(items)}) == fingerprint({"outer": payload})


@given(json_values, json_values)
def test_different_payloads_differ(left: Any, right: Any) -> None:
    if left != right:
        assert fingerprint(left) != fingerprint(right)


def test_values_change_the_fingerprint() -> None:
    base = {"email": "a@example.com", "fields": [{"id": 1, "value": "x"}]}
    assert fingerprint(base) != fingerprint({**base, "email": "b@example.com"})
    assert fingerprint(base) != fingerprint({**base, "fields": [{"id": 1, "value": "y"}]})
    assert fingerprint([1, 2]) != fingerprint([2, 1])  # list order is meaningful
    assert fingerprint({"a": None}) != fingerprint({})


def test_bytes_are_not_strings() -> None:
    assert fingerprint(b"abc") != fingerprint("abc")
    assert fingerprint(b"abc") == fingerprint(bytearray(b"abc"))
    assert fingerprint({"k": b"\x00\xff"}) == fingerprint({"k": memoryview(b"\x00\xff")})


def test_decimals_keep_their_digits() -> None:
    assert fingerprint(decimal.Decimal("1.50")) != fingerprint(decimal.Decimal("1.5"))
    assert fingerprint(decimal.Decimal("1.5")) == fingerprint(decimal.Decimal("1.5"))
    assert fingerprint(decimal.Decimal("1.5")) != fingerprint("1.5")


def test_dates_times_uuids_enums() -> None:
    class Colour(enum.Enum):
        RED = "red"

    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    payload = {
        "when": when,
        "day": datetime.date(2024, 5, 6),
        "at": datetime.time(7, 8),
        "id": uuid.UUID(int=1),
        "colour": Colour.RED,
    }
    assert fingerprint(payload) == fingerprint(dict(reversed(payload.items())))
    assert fingerprint({"when": when}) != fingerprint(
        {"when": when + datetime.timedelta(seconds=1)}
    )
    assert fingerprint({"colour": Colour.RED}) == fingerprint({"colour": "red"})


def test_sets_are_order_independent_and_tuples_are_lists() -> None:
    assert fingerprint({"tags": {"b", "a", "c"}}) == fingerprint({"tags": frozenset("cab")})
    assert fingerprint((1, 2)) == fingerprint([1, 2])


def test_big_integers() -> None:
    big = 2**80
    assert fingerprint({"n": big, "b": 1}) == fingerprint({"b": 1, "n": big})
    assert fingerprint({"n": big}) != fingerprint({"n": big + 1})
    assert fingerprint({"n": big, "d": decimal.Decimal("2"), "x": b"1"})


def test_non_string_keys() -> None:
    assert fingerprint({1: "a", 2: "b"}) == fingerprint({2: "b", 1: "a"})


def test_attrs_instances() -> None:
    @attrs.frozen
    class Field:
        id: int
        value: str

    assert fingerprint([Field(1, "x")]) == fingerprint([{"value": "x", "id": 1}])


def test_unknown_types_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot fingerprint a value of type object"):
        fingerprint({"x": object()})
    with pytest.raises(TypeError, match="cannot fingerprint"):
        fingerprint({"n": 2**80, "x": object()})


def test_raw_hash() -> None:
    line = b'{"external_id":"c1","email":"a@example.com"}'
    assert raw_hash(line) == raw_hash(bytes(line))
    assert raw_hash(line) != raw_hash(line + b" ")
    record = {"external_id": "c1", "email": "a@example.com"}
    assert raw_hash(record) == raw_hash(dict(reversed(record.items())))
    # Raw hashes and fingerprints live apart, even of the same content.
    assert raw_hash(record) != fingerprint(record)
