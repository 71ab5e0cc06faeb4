"""Yespo: every request the provider sends and every response the emulator gives, for
2,000 varied contacts in real-time mode and 2,000 in bulk mode, validated against
Yespo's published OpenAPI document (patched only for the defects in ``fix_yespo``)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from contactsync_yespo import DEMO_API_KEY, YespoEmulator

from contactsync import Outcome, Status
from contactsync.testing import EmulatorApp, EmulatorTransport
from tests.contract.conftest import require
from tests.contract.generate import contacts
from tests.contract.openapi import Capture, summary, yespo_contract
from tests.providers.engines import upsert_sync

COUNT = 2000
FIELDS = {"loyalty": 1001, "visits": 1002, "since": 1003, "notes": 1004,
          "score": 1005, "active": 1006, "seen_at": 1007}  # fmt: skip
GROUPS = {"vip": "VIP", "news": "Newsletter", "events": "Events"}


def config(mode: str, **options: Any) -> dict[str, Any]:
    return {
        "tenants": {
            "y": {
                "provider": "yespo",
                "base_url": "https://api.yespo.io",
                "default_phone_region": "GB",
                "on_unsupported": "warn",  # send what Yespo can express, warn for the rest
                "credentials": {"api_key": DEMO_API_KEY},
                "custom_fields": FIELDS,
                "groups": GROUPS,
                # resubscribe: subscribed is sent (the unsubscribed-list delete is covered).
                "options": {"mode": mode, "poll_interval": 0.01, "resubscribe": True, **options},
                "http": {"backoff_base": 0.0, "backoff_max": 0.0},
            }
        }
    }


class Run:
    def __init__(self) -> None:
        ticks = itertools.count()
        self.emulator = YespoEmulator(clock=lambda: next(ticks) * 0.005)
        for name in GROUPS.values():
            self.emulator.segment(name)
        self.capture = Capture(EmulatorTransport(EmulatorApp(self.emulator)))

    def upsert(self, rows: list[dict[str, Any]], mode: str, **options: Any) -> list[Outcome]:
        return upsert_sync(config(mode, **options), "y", self.capture, rows)

    def operations(self) -> set[str]:
        out = set()
        for request, _ in self.capture.exchanges:
            parts = request.url.path.split("/")
            shape = "/".join("{id}" if p.isdigit() or len(p) == 32 else p for p in parts)
            out.add(f"{request.method} {shape}")
        return out


def _rows(seed: int) -> list[dict[str, Any]]:
    rows = contacts(COUNT, seed=seed, groups=tuple(GROUPS), custom_fields=tuple(FIELDS))
    for n, row in enumerate(rows):
        # Yespo's escape hatch: Contact properties contactsync has no neutral field for.
        if n % 10 == 0:
            row["provider_options"] = {"yespo": {"addressBookId": 7200}}
        elif n % 10 == 5:
            row["provider_options"] = {"yespo": {"contactKey": f"key-{n}"}}
    return rows


def _assert_no_violations(run: Run) -> None:
    contract = require(yespo_contract())
    requests, responses = contract.violations(run.capture.exchanges)
    assert not requests, f"{len(requests)} request violations:\n{summary(requests)}"
    assert not responses, f"{len(responses)} response violations:\n{summary(responses)}"


def test_realtime_requests_and_responses_follow_the_spec() -> None:
    require(yespo_contract())
    run = Run()
    rows = _rows(seed=11)
    outcomes = run.upsert(rows, "realtime")
    assert len(outcomes) == COUNT
    written = [o for o in outcomes if o.status in (Status.UPDATED, Status.CREATED, Status.WRITTEN)]
    assert len(written) > COUNT * 0.8
    # Updates by Yespo id (PUT), and an identical resend (409) of a few of them.
    by_id = [{**rows[o.index], "remote_id": o.remote_id, "last_name": "Again"}
             for o in written[:100] if o.remote_id]  # fmt: skip
    run.upsert(by_id, "realtime")
    again = run.upsert(by_id[:20], "realtime")
    # A verified 409 on a PUT by id: sent (never unchanged), and the id existed.
    assert {o.status for o in again} == {Status.UPDATED}
    expected = {
        "POST /api/v1/contact", "PUT /api/v1/contact/{id}", "POST /api/v1/contact/subscribe",
        "GET /api/v1/groups", "POST /api/v1/group/{id}/contacts/attach",
        "POST /api/v1/group/{id}/contacts/detach", "POST /api/v1/emails/unsubscribed/add",
        "POST /api/v1/emails/unsubscribed/delete",
    }  # fmt: skip
    assert expected <= run.operations()
    assert len(run.capture.exchanges) > COUNT
    _assert_no_violations(run)


def test_bulk_requests_and_responses_follow_the_spec() -> None:
    require(yespo_contract())
    run = Run()
    outcomes = run.upsert(_rows(seed=12), "bulk")
    assert len(outcomes) == COUNT
    ok = (Status.UPDATED, Status.CREATED, Status.WRITTEN)  # double opt-in says new or not
    assert sum(o.status in ok for o in outcomes) > COUNT * 0.8
    expected = {"POST /api/v1/contacts", "GET /api/v1/importstatus/{id}",
                "POST /api/v1/emails/unsubscribed/add"}  # fmt: skip
    assert expected <= run.operations()
    _assert_no_violations(run)


@pytest.mark.parametrize("mode", ["realtime", "bulk"])
def test_tenant_options_and_refused_contacts_follow_the_spec(mode: str) -> None:
    # The other settings (field definitions read from /addressbooks, dedupe by external
    # id, restore, event key), and contacts Yespo refuses (digit-only names), alone in
    # their batch (failedContacts as one object) or several together.
    require(yespo_contract())
    run = Run()
    rows = _rows(seed=13)[:600]
    for n in range(0, 600, 7):
        rows[n] = {**rows[n], "first_name": "12345"}
    options = {"check_field_types": True, "dedupe_on": "externalCustomerId",
               "restore_deleted": True, "event_key_for_new_contacts": "newContact"}  # fmt: skip
    outcomes = run.upsert(rows, mode, **options)
    assert any(o.status is Status.FAILED and o.error and "firstName" in o.error.message
               for o in outcomes)  # fmt: skip
    assert "GET /api/v1/addressbooks" in run.operations()
    _assert_no_violations(run)


@pytest.mark.parametrize("mode", ["realtime", "bulk"])
def test_a_spec_violation_is_caught(mode: str) -> None:
    # The check itself: a bulk body naming addressBookId in contactFields, and a
    # text/plain answer where the spec documents JSON, are both reported.
    contract = require(yespo_contract())
    import httpx  # noqa: PLC0415

    request = httpx.Request(
        "POST", "https://api.yespo.io/api/v1/contacts",
        json={"contacts": [{"channels": [{"type": "email", "value": "a@example.com"}]}],
              "dedupeOn": "email", "contactFields": ["email", "addressBookId"]},
        headers={"Authorization": "Basic eDp5"},
    )  # fmt: skip
    assert any("addressBookId" in v for v in contract.request_violations(request))
    attach = httpx.Request("POST", "https://api.yespo.io/api/v1/group/5/contacts/attach",
                           json={"contactIds": [1]}, headers={"Authorization": "Basic eDp5"})  # fmt: skip
    plain = httpx.Response(200, text="OK", headers={"Content-Type": "text/plain"})
    assert contract.response_violations(attach, plain)
    del mode
