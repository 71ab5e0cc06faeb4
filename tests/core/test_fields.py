"""The field table: a set field its provider does not map never reaches the provider."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from contactsync import Address, Client, Contact, Status, UnsupportedFeature, load_config
from contactsync._fields import FIELDS, NAMES, FieldGuard
from contactsync._matrix import BEGIN, END, render
from contactsync.provider import Capabilities, MappingContext, Registry
from tests.fakeprovider import FakeProvider, tenant_config

DOCS = Path(__file__).parents[2] / "docs" / "providers" / "index.md"

# One set value for every neutral field (mapped or not by the fake provider).
EVERY_FIELD: dict[str, Any] = {
    "external_id": "x1",
    "remote_id": "42",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "ann@example.com",
    "phone": "+447911123456",
    "address": {
        "line1": "1 High St",
        "line2": "Flat 2",
        "city": "Leeds",
        "region": "West Yorkshire",
        "postal_code": "LS1 1AA",
        "country": "GB",
    },
    "email_status": "subscribed",
    "sms_status": "unsubscribed",
    "groups": {"add": ["vip"]},
    "tags": {"add": ["t"]},
    "custom_fields": {"loyalty": "gold"},
    "language": "en",
    "time_zone": "Europe/London",
    "birth_date": "1990-01-02",
    "provider_options": {"fake": {"k": "v"}},
}


class Seeing(FakeProvider):
    """The fake provider, keeping every contact its prepare was given."""

    seen: ClassVar[list[Contact]] = []

    def prepare(self, contact: Contact, ctx: MappingContext) -> dict[str, Any]:
        self.seen.append(contact)
        return super().prepare(contact, ctx)


def client(**overrides: Any) -> Client:
    registry = Registry(discover=False)
    registry.register(Seeing)
    Seeing.seen.clear()
    return Client(tenant_config(**overrides), "t", registry=registry)


def test_the_table_lists_every_contact_field_once() -> None:
    expected = {a.name for a in attrs.fields(Contact)} - {"address"}
    expected |= {f"address.{a.name}" for a in attrs.fields(Address)}
    assert expected == NAMES
    assert len(FIELDS) == len(NAMES)


def test_a_sample_sets_every_field() -> None:
    contact = Contact(**EVERY_FIELD)
    unset = [f.name for f in FIELDS if not f.is_set(contact, "fake")]
    assert unset == []
    assert not any(f.is_set(Contact(), "fake") for f in FIELDS)


@pytest.mark.parametrize("field", sorted(NAMES - FakeProvider.capabilities.fields))
def test_an_unmapped_field_is_rejected_before_the_provider_sees_it(field: str) -> None:
    top, _, part = field.partition(".")
    value = EVERY_FIELD[top] if not part else {part: EVERY_FIELD["address"][part]}
    with client() as c:
        outcome = c.upsert({"external_id": "a", "email": "a@example.com", top: value})
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "unsupported_feature"
    assert field in outcome.error.message
    assert Seeing.seen == []


def test_with_warn_every_unmapped_field_is_cleared_and_named() -> None:
    with client(on_unsupported="warn") as c:
        outcome = c.upsert(EVERY_FIELD)
    assert outcome.status is Status.CREATED
    (seen,) = Seeing.seen
    mapped = FakeProvider.capabilities.fields
    for field in FIELDS:
        assert field.is_set(seen, "fake") == (field.name in mapped), field.name
    named = " ".join(outcome.warnings)
    assert all(name in named for name in NAMES - mapped)


def test_a_field_no_provider_declares_is_never_dropped_silently() -> None:
    # What a new Contact field looks like to every provider: declared by none.
    guard = FieldGuard("fake", Capabilities(fields=NAMES - {"birth_date"}))
    tenant = load_config(tenant_config()).tenant("t")
    contact = Contact(external_id="a", birth_date=dt.date(1990, 1, 2))
    with pytest.raises(UnsupportedFeature, match="birth_date"):
        guard.check(contact, MappingContext("fake", tenant))
    warn = attrs.evolve(tenant, on_unsupported="warn")
    ctx = MappingContext("fake", warn)
    assert guard.check(contact, ctx).birth_date is None
    assert ctx.warnings == ["fake cannot express birth_date; it was not sent"]


def test_another_providers_options_are_not_this_ones_business() -> None:
    guard = FieldGuard("fake", Capabilities(fields=NAMES - {"provider_options"}))
    tenant = load_config(tenant_config()).tenant("t")
    contact = Contact(external_id="a", provider_options={"other": {"k": 1}})
    assert guard.check(contact, MappingContext("fake", tenant)) is contact


def test_a_note_says_what_to_do_instead() -> None:
    caps = Capabilities(fields=NAMES - {"birth_date"}, field_notes={"birth_date": "use a field"})
    tenant = load_config(tenant_config()).tenant("t")
    with pytest.raises(UnsupportedFeature, match=r"birth_date \(use a field\)"):
        FieldGuard("fake", caps).check(
            Contact(birth_date="1990-01-02"), MappingContext("fake", tenant)
        )


def test_the_docs_matrix_is_the_installed_providers_matrix() -> None:
    installed = Registry()  # entry points only: what users get
    expected = render(installed.get(name) for name in installed.names())
    page = DOCS.read_text(encoding="utf-8")
    start, end = page.index(BEGIN), page.index(END) + len(END)
    assert page[start:end] == expected, "run `contactsync providers --markdown` into the page"
