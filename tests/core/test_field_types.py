"""Declared custom field types: text converted, bad values rejected, on every provider."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from contactsync import Client, ConfigError, ContactError, Status
from contactsync._config import load_config
from contactsync._field_types import FieldType, convert
from contactsync._model import CustomValue


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("int", "10", 10),
        ("int", " -3 ", -3),
        ("int", 7, 7),
        ("int", 7.0, 7),
        ("float", "2.5", 2.5),
        ("float", 3, 3.0),
        ("bool", "yes", True),
        ("bool", "No", False),
        ("bool", "1", True),
        ("bool", "0", False),
        ("bool", "TRUE", True),
        ("bool", 0, False),
        ("date", "2024-05-01", dt.date(2024, 5, 1)),
        ("date", dt.date(2024, 5, 1), dt.date(2024, 5, 1)),
        ("datetime", "2024-05-01T10:30:00Z", dt.datetime(2024, 5, 1, 10, 30, tzinfo=dt.UTC)),
        ("datetime", "2024-05-01", dt.datetime(2024, 5, 1)),
        ("str", 10, "10"),
        ("str", dt.date(2024, 5, 1), "2024-05-01"),
        ("str", "x", "x"),
    ],
)
def test_values_are_converted_to_the_declared_type(
    type_: str, value: CustomValue, expected: CustomValue
) -> None:
    result = convert("f", value, FieldType(type_))
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("type_", "value"),
    [
        ("int", "ten"),
        ("int", "1.5"),
        ("int", 1.5),
        ("int", True),
        ("int", "1_000"),
        ("float", "nan"),
        ("float", "inf"),
        ("float", "abc"),
        ("float", False),
        ("bool", "maybe"),
        ("bool", 2),
        ("date", "not-a-date"),
        ("date", "2024-13-01"),
        ("date", dt.datetime(2024, 5, 1, 10)),
        ("datetime", "yesterday"),
        ("datetime", 5),
        ("str", True),
    ],
)
def test_a_value_not_of_the_type_is_refused_naming_the_field(
    type_: str, value: CustomValue
) -> None:
    with pytest.raises(ContactError) as info:
        convert("loyalty", value, FieldType(type_))
    assert info.value.field == "custom_fields.loyalty"
    assert f"declared type {type_}" in info.value.problem
    assert str(value) not in info.value.problem  # the value is not echoed


def config(entry: object) -> dict[str, Any]:
    return {
        "tenants": {
            "t": {"provider": "yespo", "base_url": "emulator", "custom_fields": {"f": entry}}
        }
    }


def test_the_mapping_takes_a_plain_id_or_an_id_with_a_type() -> None:
    tenant = load_config(config({"id": 79814, "type": "int"})).tenant("t")
    assert dict(tenant.custom_fields) == {"f": 79814}
    assert dict(tenant.custom_field_types) == {"f": FieldType.INT}
    tenant = load_config(config(79814)).tenant("t")
    assert (dict(tenant.custom_fields), dict(tenant.custom_field_types)) == ({"f": 79814}, {})
    untyped = load_config(config({"id": 5})).tenant("t")
    assert dict(untyped.custom_field_types) == {}


@pytest.mark.parametrize(
    ("entry", "path", "problem"),
    [
        ({"id": 1, "type": "integer"}, "tenants.t.custom_fields.f.type", "must be one of"),
        ({"type": "int"}, "tenants.t.custom_fields.f.id", "required key is missing"),
        ({"id": 1, "kind": "int"}, "tenants.t.custom_fields.f.kind", "unknown key"),
        ({"id": True}, "tenants.t.custom_fields.f.id", "must be a platform id"),
        (1.5, "tenants.t.custom_fields.f", "must be a platform id"),
    ],
)
def test_a_bad_mapping_entry_names_its_key(entry: object, path: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(config(entry))
    assert info.value.path == path
    assert problem in info.value.problem


IDS: dict[str, tuple[str | int, str | int]] = {
    "yespo": (101, 102),
    "ivvy": (101, 102),
    "gleantap": ("loyalty_points", "joined_on"),
}


def typed_client(provider: str, typed: bool = True) -> Client:
    loyalty, joined = IDS[provider]
    fields: dict[str, Any] = (
        {"loyalty": {"id": loyalty, "type": "int"}, "joined": {"id": joined, "type": "date"}}
        if typed
        else {"loyalty": loyalty, "joined": joined}
    )
    tenant = {"provider": provider, "base_url": "emulator", "custom_fields": fields}
    return Client(load_config({"tenants": {"t": tenant}}), "t")


def person(n: int, **custom: str) -> dict[str, Any]:
    return {
        "external_id": f"p{n}",
        "email": f"p{n}@example.com",
        "first_name": "Pat",
        "last_name": "Lee",
        "custom_fields": custom,
    }


def bodies(client: Client, record: dict[str, Any]) -> str:
    planned = [item.to_json() for item in client.plan([record]) if hasattr(item, "method")]
    return json.dumps([p["body"] for p in planned])


@pytest.mark.parametrize("provider", sorted(IDS))
def test_every_provider_gets_typed_values_and_refuses_bad_ones(provider: str) -> None:
    with typed_client(provider) as client:
        good = client.upsert(person(1, loyalty="10", joined="2024-05-01"))
        assert good.ok, good.error  # created (some platforms only say "written")
        bad = client.upsert(person(2, loyalty="ten"))
        assert bad.status is Status.REJECTED
        assert bad.error is not None
        assert bad.error.field == "custom_fields.loyalty"
        date = client.upsert(person(3, joined="not-a-date"))
        assert date.error is not None
        assert date.error.field == "custom_fields.joined"
        typed_body = bodies(client, person(4, loyalty="10"))
    with typed_client(provider, typed=False) as client:
        untyped_body = bodies(client, person(4, loyalty="10"))
    if provider == "yespo":
        # Yespo field values are text on the wire: the same either way.
        assert typed_body == untyped_body
    else:
        assert typed_body == untyped_body.replace('"10"', "10")
        assert typed_body != untyped_body
