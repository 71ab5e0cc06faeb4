from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactsync import Contact, ContactError, contact_from_record, contact_to_record
from contactsync._model import CONTACT_FIELDS, contact_from_fields
from contactsync._records import read_csv, read_jsonl

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "external_id",
        "remote_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "email_status",
        "sms_status",
        "groups",
        "tags",
        "custom_fields",
        "language",
        "time_zone",
        "birth_date",
        "provider_options",
    ]
) | st.text(max_size=8)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=8))
def test_any_json_object_gives_a_contact_or_a_contact_error(record: dict[str, Any]) -> None:
    error: ContactError | None = None
    try:
        contact = contact_from_record(record)
    except ContactError as exc:
        error = exc
    if error is None:
        assert isinstance(contact, Contact)
    else:
        assert error.field
        assert error.problem


def _built(build: Any, record: dict[str, Any]) -> object:
    try:
        return build(record)
    except ContactError as exc:
        return ("refused", exc.field, exc.problem)
    except Exception as exc:  # what Contact raises, the lean path must raise too
        return (type(exc), str(exc))


plausible_values = (
    json_values
    | st.sampled_from(["ada@example.com", "+44 20 7946 0958", "020 7946 0958", "en", "GB"])
    | st.sampled_from(["subscribed", "Europe/London", "1990-02-03", " padded "])
    | st.fixed_dictionaries({}, optional={"add": st.lists(st.text(max_size=3), max_size=2)})
    | st.fixed_dictionaries({}, optional={"city": st.text(max_size=5), "country": st.text()})
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(field_names.filter(lambda n: n in CONTACT_FIELDS), plausible_values))
def test_the_lean_constructor_builds_what_contact_does(record: dict[str, Any]) -> None:
    # The same contact, or the same refusal (the first bad field, in field order).
    assert _built(contact_from_fields, record) == _built(lambda r: Contact(**r), record)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_any_json_value_gives_a_contact_or_a_contact_error(value: Any) -> None:
    with contextlib.suppress(ContactError):
        assert isinstance(contact_from_record(value), Contact)


def test_record_round_trip() -> None:
    record = {
        "external_id": "c1",
        "first_name": "Ada",
        "email": "ada@example.com",
        "phone": "+442079460958",
        "address": {"city": "London", "country": "GB"},
        "email_status": "subscribed",
        "groups": {"add": ["vip"], "remove": ["old"]},
        "tags": {"add": ["x"]},
        "custom_fields": {"loyalty": 3, "since": "2020-01-01"},
        "birth_date": "1990-12-31",
    }
    contact = contact_from_record(record)
    assert contact_to_record(contact) == record
    assert contact_from_record(json.loads(json.dumps(contact_to_record(contact)))) == contact


def test_unknown_key_is_named() -> None:
    with pytest.raises(ContactError) as info:
        contact_from_record({"emial": "x@example.com"})
    assert info.value.field == "emial"
    assert info.value.problem == "unknown field (did you mean email?)"


def test_jsonl_reader_numbers_lines_and_flags_bad_json() -> None:
    lines = list(
        read_jsonl(io.StringIO('{"email": "a@example.com"}\n\n{oops\n{"first_name": "B"}\n'))
    )
    assert [line.index for line in lines] == [0, 1, 2]
    assert lines[1].error is not None
    assert lines[1].error.field == "<line>"
    assert lines[2].record == {"first_name": "B"}


def test_csv_reader_nests_dotted_columns_and_splits_lists() -> None:
    text = (
        "external_id,email,address.city,custom_fields.loyalty,groups,tags,groups.add\n"
        "c1,a@example.com,Leeds,gold,vip|news,,\n"
        "c2,,,,,x|y,promo\n"
    )
    rows = [line.record for line in read_csv(io.StringIO(text))]
    assert rows[0] == {
        "external_id": "c1",
        "email": "a@example.com",
        "address": {"city": "Leeds"},
        "custom_fields": {"loyalty": "gold"},
        "groups": ["vip", "news"],
    }
    assert rows[1] == {"external_id": "c2", "tags": ["x", "y"], "groups": {"add": ["promo"]}}
    contact = contact_from_record(rows[1])
    assert contact.groups.add == ("promo",)
