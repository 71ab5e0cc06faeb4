from __future__ import annotations

import datetime as dt

import pytest

from contactsync import Address, ChangeMode, Contact, ContactError, MembershipChange, Subscription


def test_email_is_normalized_and_kept_in_normalized_form() -> None:
    contact = Contact(email="  Ada.Lovelace@EXAMPLE.com ")
    assert contact.email == "Ada.Lovelace@example.com"


def test_international_phone_becomes_e164_at_construction() -> None:
    assert Contact(phone="+44 20 7946 0958").phone == "+442079460958"
    assert Contact(phone="0044 20 7946 0958").phone == "+442079460958"


def test_national_phone_waits_for_the_tenant_region() -> None:
    contact = Contact(phone="020 7946 0958")
    assert not contact.phone_is_complete
    assert contact.with_phone_region("GB").phone == "+442079460958"
    assert Contact(phone="(201) 555-0123").with_phone_region("US").phone == "+12015550123"


def test_national_phone_without_region_is_an_error_naming_the_field() -> None:
    with pytest.raises(ContactError) as info:
        Contact(phone="020 7946 0958").with_phone_region(None)
    assert info.value.field == "phone"
    assert "default_phone_region" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"email": "not-an-email"}, "email", "not a valid address"),
        ({"email": "a@b"}, "email", "not a valid address"),
        ({"phone": "+44 12"}, "phone", "not a valid number"),
        ({"phone": "+999 1234567"}, "phone", "unknown country code"),
        ({"phone": "call me"}, "phone", "no digits"),
        ({"first_name": 12}, "first_name", "must be a string"),
        ({"first_name": "a\x00b"}, "first_name", "control characters"),
        ({"last_name": "x" * 256}, "last_name", "longer than 255"),
        ({"email_status": "maybe"}, "email_status", "must be one of"),
        ({"sms_status": 3}, "sms_status", "must be one of"),
        ({"language": "english!"}, "language", "BCP 47"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "IANA"),
        ({"birth_date": "31/12/1990"}, "birth_date", "YYYY-MM-DD"),
        ({"birth_date": dt.datetime(1990, 1, 1)}, "birth_date", "not a datetime"),
        ({"address": {"country": "Narnia"}}, "address.country", "ISO 3166"),
        ({"address": {"planet": "Earth"}}, "address.planet", "unknown address field"),
        ({"address": "1 Main St"}, "address", "must be an Address"),
        ({"custom_fields": {"score": [1, 2]}}, "custom_fields.score", "must be a string, number"),
        ({"custom_fields": {"score": float("nan")}}, "custom_fields.score", "finite"),
        ({"custom_fields": {"score": None}}, "custom_fields.score", "leave the name out"),
        ({"custom_fields": {"note": "  "}}, "custom_fields.note", "blank"),
        ({"custom_fields": ["a"]}, "custom_fields", "mapping"),
        ({"groups": "vip"}, "groups", "not a single string"),
        ({"groups": ["vip", ""]}, "groups.replace[1]", "blank"),
        ({"tags": [1]}, "tags.add[0]", "must be a string"),
        ({"provider_options": {"x": 1}}, "provider_options.x", "mapping"),
        ({"external_id": ["x"]}, "external_id", "must be a string"),
    ],
)
def test_every_invalid_value_raises_contact_error_naming_the_field(
    kwargs: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(ContactError) as info:
        Contact(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert fragment in info.value.problem
    assert str(info.value).startswith(f"{field}: ")


def test_blank_strings_are_absent_and_text_is_stripped() -> None:
    contact = Contact(first_name="  Ada ", last_name="   ", email="")
    assert contact.first_name == "Ada"
    assert contact.last_name is None
    assert contact.email is None


def test_integer_ids_become_strings() -> None:
    assert Contact(external_id=42, remote_id=7).external_id == "42"


def test_statuses_accept_enum_or_case_insensitive_text() -> None:
    contact = Contact(email_status="Unsubscribed", sms_status=Subscription.NO_MARKETING)
    assert contact.email_status is Subscription.UNSUBSCRIBED
    assert contact.sms_status is Subscription.NO_MARKETING


def test_group_list_replaces_and_tag_list_adds() -> None:
    contact = Contact(groups=["a", "b", "a"], tags=["x"])
    assert contact.groups == MembershipChange(replace=("a", "b"))
    assert contact.groups.modes == {ChangeMode.REPLACE}
    assert contact.tags.add == ("x",)


def test_membership_change_rules() -> None:
    with pytest.raises(ContactError, match="replace: cannot be combined"):
        MembershipChange(add=("a",), replace=("b",))
    with pytest.raises(ContactError, match="remove: names also in add: a"):
        MembershipChange(add=("a",), remove=("a",))
    assert not MembershipChange()
    assert MembershipChange(replace=())
    assert MembershipChange(replace=()).replace == ()


def test_address_normalizes_country_and_empty_address_is_none() -> None:
    contact = Contact(address={"city": " Leeds ", "country": "gb"})
    assert contact.address == Address(city="Leeds", country="GB")
    assert Contact(address={"city": ""}).address is None


def test_custom_field_values_keep_their_types() -> None:
    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.UTC)
    contact = Contact(
        custom_fields={"n": 3, "f": 1.5, "b": True, "d": dt.date(2024, 1, 2), "t": when}
    )
    assert dict(contact.custom_fields) == {
        "n": 3,
        "f": 1.5,
        "b": True,
        "d": dt.date(2024, 1, 2),
        "t": when,
    }


def test_contact_is_frozen() -> None:
    contact = Contact(email="a@example.com")
    with pytest.raises(AttributeError):
        contact.email = "b@example.com"  # type: ignore[misc]
    with pytest.raises(TypeError):
        contact.custom_fields["x"] = 1  # type: ignore[index]


def test_language_and_time_zone_valid_forms() -> None:
    contact = Contact(language="pt-BR", time_zone="Europe/London", birth_date="1990-12-31")
    assert (contact.language, contact.time_zone, contact.birth_date) == (
        "pt-BR",
        "Europe/London",
        dt.date(1990, 12, 31),
    )


def test_provider_options_are_per_provider() -> None:
    contact = Contact(provider_options={"fake": {"vip": True}})
    assert contact.options_for("fake") == {"vip": True}
    assert contact.options_for("other") == {}
