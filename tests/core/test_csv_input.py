"""Input files as spreadsheets and other tools write them."""

from __future__ import annotations

import io

import pytest

from contactsync import Contact, ContactError
from contactsync._csv_header import sniff_delimiter
from contactsync._errors import UnknownField
from contactsync._records import InputError, contact_from_record, input_kind, read_input


def rows(data: bytes, kind: str = "csv") -> list[tuple[object, str | None]]:
    return [
        (line.record, None if line.error is None else str(line.error))
        for line in read_input(io.BytesIO(data), kind)
    ]


def test_an_excel_csv_with_bom_semicolons_and_human_headers() -> None:
    data = (
        "\ufeffExternal ID;Email;First Name; last name ;Address.City;custom_fields.Loyalty\r\n"
        "a1;a@example.com;Ann;Lee;Leeds;10\r\n"
        'b2;b@example.com;"Bo; Jr";;;\r\n'
    ).encode()
    assert rows(data) == [
        (
            {
                "external_id": "a1",
                "email": "a@example.com",
                "first_name": "Ann",
                "last_name": "Lee",
                "address": {"city": "Leeds"},
                "custom_fields": {"Loyalty": "10"},
            },
            None,
        ),
        ({"external_id": "b2", "email": "b@example.com", "first_name": "Bo; Jr"}, None),
    ]
    contact = contact_from_record(rows(data)[0][0])
    assert contact.first_name == "Ann"


@pytest.mark.parametrize(
    ("line", "delimiter"),
    [
        ("a,b,c", ","),
        ("a;b;c", ";"),
        ("a\tb\tc", "\t"),
        ('"x,y";b;c', ";"),  # a delimiter inside quotes does not count
        ("email", ","),
        ("a;b,c", ","),  # a tie keeps the comma
    ],
)
def test_the_delimiter_is_found_from_the_header(line: str, delimiter: str) -> None:
    assert sniff_delimiter(line + "\n") == delimiter


def test_a_tab_separated_file() -> None:
    assert rows(b"email\tphone\na@example.com\t+447700900123\n") == [
        ({"email": "a@example.com", "phone": "+447700900123"}, None)
    ]


def test_an_unknown_header_fails_once_naming_it_and_the_valid_ones() -> None:
    with pytest.raises(InputError) as info:
        read_input(io.BytesIO(b"external_id,Emial\na,b\n"), "csv")
    message = str(info.value)
    assert "CSV header column 2 'Emial' is not a contact field (did you mean email?)" in message
    assert "valid columns" in message
    assert "first_name" in message
    assert "address.city" in message


@pytest.mark.parametrize(
    "header", ["address.town", "groups.insert", "provider_options", "provider_options.x"]
)
def test_bad_nested_headers_are_refused(header: str) -> None:
    with pytest.raises(InputError, match=f"column 1 '{header}'"):
        read_input(io.BytesIO(f"{header}\nx\n".encode()), "csv")


def test_two_headers_for_one_field_are_refused() -> None:
    with pytest.raises(InputError) as info:
        read_input(io.BytesIO(b"Email,phone, EMAIL\na,b\n"), "csv")
    assert str(info.value) == "CSV header columns 1 'Email' and 3 ' EMAIL' both name email"


def test_ragged_rows_and_unnamed_columns() -> None:
    data = b"email,,phone\na@example.com,,\nb@example.com,x,\nc@example.com,,,extra\n"
    result = rows(data)
    assert result[0] == ({"email": "a@example.com"}, None)
    assert "column 2, which has no name" in str(result[1][1])
    assert "the row has 4 cells, the header 3" in str(result[2][1])


def test_custom_field_names_and_provider_options_keep_their_case() -> None:
    data = b"custom_fields.Loyalty Level,Provider Options.Yespo.someKey\nx,y\n"
    assert rows(data) == [
        (
            {
                "custom_fields": {"Loyalty Level": "x"},
                "provider_options": {"yespo": {"someKey": "y"}},
            },
            None,
        )
    ]


def test_a_json_file_is_one_array() -> None:
    data = b'\xef\xbb\xbf[{"email": "a@example.com"}, {"emial": "b"}, 3]'
    result = rows(data, "json")
    assert [r[0] for r in result] == [{"email": "a@example.com"}, {"emial": "b"}, 3]
    with pytest.raises(ContactError, match="emial: unknown field"):
        contact_from_record(result[1][0])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"email": "a@example.com"}\n{"email": "b@example.com"}\n', "not JSON"),
        (b'{"email": "a@example.com"}', "must hold one JSON array"),
        (b"[1,", "cannot be read"),
        (b'["\xff"]', "not UTF-8"),
    ],
)
def test_a_json_file_that_is_not_an_array_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        read_input(io.BytesIO(data), "json")


@pytest.mark.parametrize(
    ("path", "kind"),
    [("a.csv", "csv"), ("A.JSON", "json"), ("a.jsonl", "jsonl"), ("-", "jsonl"), ("x", "jsonl")],
)
def test_the_input_kind_follows_the_file_name(path: str, kind: str) -> None:
    assert input_kind(path) == kind


def test_a_misspelt_keyword_is_a_contact_error_naming_it() -> None:
    with pytest.raises(UnknownField) as info:
        Contact(emial="a@example.com")  # type: ignore[call-arg]
    assert info.value.field == "emial"
    assert str(info.value) == "emial: unknown field (did you mean email?)"
    assert isinstance(info.value, TypeError)  # what Python raises for a bad keyword
