"""Gleantap: every request the provider sends and every response the emulator gives,
for 2,000 varied contacts, validated against Gleantap's published OpenAPI document
(patched only for the defect in ``fix_gleantap``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from contactsync_gleantap import DEMO_API_KEY, DEMO_APP_ID, DEMO_SECRET_KEY, GleantapEmulator

from contactsync import Status
from contactsync.testing import EmulatorApp, EmulatorTransport
from tests.contract.conftest import require
from tests.contract.generate import contacts
from tests.contract.openapi import Capture, gleantap_contract, summary
from tests.providers.engines import upsert_sync

COUNT = 2000
FIELDS = ("loyalty", "visits", "since", "notes", "score", "active", "seen_at")


def config() -> dict[str, Any]:
    return {
        "tenants": {
            "g": {
                "provider": "gleantap",
                "default_phone_region": "GB",
                "on_unsupported": "warn",
                "credentials": {"api_key": DEMO_API_KEY, "secret_key": DEMO_SECRET_KEY},
                # Every attribute mapped: an unmapped custom field is rejected.
                "custom_fields": {**{f: f for f in FIELDS}, "loyalty": "loyalty_level"},
                "options": {"app_id": DEMO_APP_ID},
                "http": {"backoff_base": 0.0, "backoff_max": 0.0},
            }
        }
    }


def test_requests_and_responses_follow_the_spec() -> None:
    contract = require(gleantap_contract())
    emulator = GleantapEmulator()
    capture = Capture(EmulatorTransport(EmulatorApp(emulator)))
    rows = contacts(COUNT, seed=21, custom_fields=FIELDS)
    outcomes = upsert_sync(config(), "g", capture, rows)
    assert len(outcomes) == COUNT
    # Created, updated or written (Gleantap's answer does not say which: the look-ups do).
    written = (Status.CREATED, Status.UPDATED, Status.WRITTEN)
    assert sum(o.status in written for o in outcomes) > COUNT * 0.8
    methods = Counter(r.url.path.rsplit("/", 1)[1] for r, _ in capture.exchanges)
    assert {"newContact", "getCustomers", "optin"} <= set(methods)
    sent = [r for r, _ in capture.exchanges if r.url.path.endswith("newContact")]
    assert any(b"xn--" in r.content for r in sent)  # IDN domains went out encoded
    requests, responses = contract.violations(capture.exchanges)
    assert not requests, f"{len(requests)} request violations:\n{summary(requests)}"
    assert not responses, f"{len(responses)} response violations:\n{summary(responses)}"


def test_a_null_member_value_is_caught() -> None:
    # The check itself: a member carrying null where the spec types a string.
    contract = require(gleantap_contract())
    request = httpx.Request(
        "POST", "https://api.gleantap.com/v2/ExternalApi/getCustomers",
        json={"app_id": DEMO_APP_ID, "email": "a@example.com"},
        headers={"X-API-KEY": DEMO_API_KEY, "X-SECRET-KEY": DEMO_SECRET_KEY},
    )  # fmt: skip
    assert contract.request_violations(request) == []
    null_phone = httpx.Response(
        200, json={"members": [{"id": "gt1", "firstname": "A", "lastname": "B", "phone": None}]}
    )
    assert contract.response_violations(request, null_phone)
