"""Log records name their tenant, provider and inputs, and nothing secret or personal."""

from __future__ import annotations

import logging

import pytest

from contactsync import Client, Contact, Status
from contactsync._errors import UnsupportedFeature
from contactsync._logs import TenantLog
from contactsync._model import field_named_in
from tests.core.test_engine import Script, drop, status
from tests.fakeprovider import FakeProvider, tenant_config


def test_a_message_lists_a_few_indexes_and_extra_has_them_all(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="contactsync")
    TenantLog("acme", "yespo").info("sent %d", 3000, indexes=range(3000))
    TenantLog("acme", "yespo").warning("no inputs")
    first, second = caplog.records
    assert first.getMessage() == (
        "tenant acme (yespo), inputs 0, 1, 2, 3, 4, 5, 6, 7 and 2992 more: sent 3000"
    )
    assert first.input_indexes == list(range(3000))  # type: ignore[attr-defined]
    assert second.getMessage() == "tenant acme (yespo): no inputs"
    assert second.input_indexes == []  # type: ignore[attr-defined]


def test_retries_at_debug_hold_no_secret_and_no_contact_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = Script([status(429), drop, status(503)])
    contact = Contact(external_id="ext-9", email="private.person@example.com", first_name="Zed")
    with Client(tenant_config(), "t", transport=transport, sleep=lambda _: None) as client:
        outcome = client.upsert(contact)
    assert outcome.status is Status.CREATED
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text.count("tenant t (fake), input 0:") == 3
    for private in ("fake-demo-key", "private.person", "Zed"):
        assert private not in text


def test_an_unsupported_feature_names_its_field() -> None:
    assert field_named_in("sms_status unsubscribed") == "sms_status"
    assert field_named_in("replacing all groups (use add / remove)") == "groups"
    assert field_named_in("address.country (no country)") == "address.country"
    assert field_named_in("upserting contacts") is None
    assert UnsupportedFeature("x", "anything", field="tags").field == "tags"
    with Client(tenant_config(), "t") as client:
        outcome = client.upsert({"email": "a@example.com", "sms_status": "subscribed"})
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.field) == ("unsupported_feature", "sms_status")


def test_a_provider_exception_quoting_an_echoed_credential_is_logged_masked(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "gts/live&P0o9xQ2"
    echoed = "gts\\/live&amp;P0o9xQ2"  # as a platform's PHP JSON of HTML would give it

    def prepare(self: object, contact: Contact, ctx: object) -> object:
        raise RuntimeError(f"platform said: bad key {echoed}")

    monkeypatch.setattr(FakeProvider, "prepare", prepare)
    caplog.set_level(logging.DEBUG, logger="contactsync")
    config = tenant_config(credentials={"api_key": secret}, base_url="http://127.0.0.1:9")
    with Client(config, "t") as client:
        outcome = client.upsert(Contact(external_id="e1", email="e1@example.com"))
    assert outcome.status is Status.FAILED
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter())
    logged = "\n".join(handler.format(r) for r in caplog.records)
    assert "could not prepare the contact" in logged
    assert "platform said: bad key ***" in logged  # the traceback, masked
    assert echoed not in logged
    assert "P0o9" not in logged + str(outcome.error)
