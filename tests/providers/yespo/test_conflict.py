"""Yespo's real-time 409 ("repeated request within 1 minute") is verified, never trusted."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from contactsync import Outcome, Status
from contactsync.testing import Faults
from tests.providers.engines import upsert_sync
from tests.providers.yespo.conftest import Yespo, channel, direct, yespo_config

Upsert = Callable[..., list[Outcome]]


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {"external_id": f"c{n}", "email": f"p{n}@example.com", "first_name": f"P{n}", **extra}


def lookups(yespo: Yespo) -> list[str]:
    return [
        f"{r.method} {r.url.path}"
        for r in yespo.transport.requests
        if r.method == "GET" and r.url.path.startswith("/api/v1/contact")
    ]


def test_a_confirmed_409_is_written_with_the_contact_id(yespo: Yespo, upsert: Upsert) -> None:
    row = person(1, phone="07911 123456", language="en", time_zone="Europe/London",
                 address={"line1": "1 High St", "city": "Leeds"},
                 custom_fields={"loyalty": "gold", "visits": 3})  # fmt: skip
    (first,) = upsert([row], mode="realtime")
    (again,) = upsert([row], mode="realtime")
    # Sent, so never "unchanged"; Yespo's 409 does not say who created the contact.
    assert again.status is Status.WRITTEN
    assert again.remote_id == first.remote_id
    # Verified with the documented look-ups: search by external id, then the full record.
    assert lookups(yespo) == ["GET /api/v1/contacts", f"GET /api/v1/contact/{first.remote_id}"]


def test_a_409_over_an_edit_is_written_by_the_contacts_id(yespo: Yespo, upsert: Upsert) -> None:
    (first,) = upsert([person(1)], mode="realtime")
    # The record changes on Yespo within the minute (another app, the UI, a PUT) ...
    api = direct(yespo.emulator)
    assert api.put(f"/api/v1/contact/{first.remote_id}", json={"firstName": "Other"}).is_success
    # ... so the same request again is answered 409, yet Yespo does not hold it: the
    # contact holding the external id is written by its id (a PUT is not a repeat).
    (again,) = upsert([person(1)], mode="realtime")
    assert yespo.by_external("c1")["firstName"] == "P1"
    assert again.status is Status.UPDATED  # by id: it existed
    assert again.remote_id == first.remote_id
    assert len(yespo.stored()) == 1
    puts = [r.url.path for r in yespo.transport.requests if r.method == "PUT"]
    assert puts == [f"/api/v1/contact/{first.remote_id}"]


def test_a_409_over_an_edit_without_external_id_is_a_retryable_failure(
    yespo: Yespo, upsert: Upsert
) -> None:
    row = {"email": "solo@example.com", "first_name": "Solo"}
    (first,) = upsert([row], mode="realtime")
    api = direct(yespo.emulator)
    assert api.put(f"/api/v1/contact/{first.remote_id}", json={"firstName": "Other"}).is_success
    # Found by its email only (an address can be shared): not written by id, not guessed.
    (again,) = upsert([row], mode="realtime")
    assert yespo.stored()[0]["firstName"] == "Other"
    assert again.status is Status.FAILED
    assert again.error is not None
    assert again.error.retryable
    assert again.error.code == "request_failed"
    assert "409" in again.error.message
    assert "firstName" in again.error.message


def test_a_409_for_a_deleted_contact_is_not_unchanged(yespo: Yespo, upsert: Upsert) -> None:
    upsert([person(1)], mode="realtime")
    api = direct(yespo.emulator)
    assert api.delete("/api/v1/contact", params={"externalCustomerId": "c1"}).is_success
    (again,) = upsert([person(1)], mode="realtime")
    assert again.status is Status.FAILED
    assert again.error is not None
    assert again.error.retryable


def test_a_409_by_id_is_verified_by_id(yespo: Yespo, upsert: Upsert) -> None:
    (first,) = upsert([person(1)], mode="realtime")
    row = {"remote_id": first.remote_id, "email": "p1@example.com", "last_name": "New"}
    upsert([row], mode="realtime")
    (again,) = upsert([row], mode="realtime")
    # A PUT by id updates only: the contact existed, so "updated" (never "unchanged").
    assert again.status is Status.UPDATED
    assert again.remote_id == first.remote_id
    assert lookups(yespo) == [f"GET /api/v1/contact/{first.remote_id}"]


def test_a_409_without_external_id_is_found_by_email_and_sends_its_segments(
    yespo: Yespo, upsert: Upsert
) -> None:
    row = {"email": "solo@example.com", "first_name": "Solo"}
    (first,) = upsert([row], mode="realtime")
    # The same body again, now with a segment to add: the contact write is a 409.
    (again,) = upsert([{**row, "groups": {"add": ["vip"]}}], mode="realtime")
    assert again.status is Status.WRITTEN
    assert again.remote_id == first.remote_id
    assert not again.warnings
    (stored,) = yespo.stored()
    assert [g["name"] for g in stored["groups"]] == ["VIP"]


def test_a_409_without_external_id_found_by_phone(yespo: Yespo, upsert: Upsert) -> None:
    row = {"phone": "07911 123456", "last_name": "Phone"}
    (first,) = upsert([row], mode="realtime")
    (again,) = upsert([row], mode="realtime")
    assert again.status is Status.WRITTEN
    assert again.remote_id == first.remote_id


def test_a_409_matching_several_contacts_is_not_guessed(yespo: Yespo, upsert: Upsert) -> None:
    api = direct(yespo.emulator)
    # Two contacts made outside the library with one address, both named alike and
    # without external id (with external ids they are other people: the row is then
    # rejected before anything is sent, see test_identity.py).
    # (each made under its own address, then given the shared one by its id).
    for n in (1, 2):
        body = {"firstName": "Twin",
                "channels": [{"type": "email", "value": f"twin{n}@example.com"}]}  # fmt: skip
        made = api.post("/api/v1/contact", json=body)
        assert made.is_success
        shared = {"channels": [{"type": "email", "value": "family@example.com"}]}
        assert api.put(f"/api/v1/contact/{made.json()['id']}", json=shared).is_success
    row = {"email": "family@example.com", "first_name": "Twin", "groups": {"add": ["vip"]}}
    upsert([row], mode="realtime")
    (again,) = upsert([row], mode="realtime")
    assert again.status is Status.FAILED
    assert again.error is not None
    assert again.error.retryable
    assert "2 contacts" in again.error.message


def test_lost_answers_then_409_leave_no_contact_outside_its_segment() -> None:
    yespo = Yespo(Faults(rate=0.5, kinds=("lost",), seed=7))
    rows: list[dict[str, Any]] = [
        {"email": f"p{n}@example.com", "first_name": f"P{n}", "groups": {"add": ["vip"]}}
        for n in range(200)
    ]
    outcomes = yespo.upsert(rows, mode="realtime")
    assert len(outcomes) == len(rows)
    assert yespo.app.faults_injected["lost"] > 50
    vip = yespo.emulator.segment("VIP")["members"]
    by_email = {str(channel(c, "email")): c["id"] for c in yespo.emulator.contacts()}
    silently_missing = [
        o
        for o in outcomes
        if o.status is not Status.FAILED and by_email[rows[o.index]["email"]] not in vip
    ]
    assert silently_missing == []
    assert sum(o.status is Status.FAILED for o in outcomes) < len(rows) * 0.05
    assert all(not o.warnings for o in outcomes if o.status is not Status.FAILED)


class _NoSearch(httpx.BaseTransport):
    """Yespo refusing the contact search (as if the key may not read contacts)."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path == "/api/v1/contacts":
            return httpx.Response(400, text="search refused")
        return self.inner.handle_request(request)


def test_a_409_that_cannot_be_looked_up_says_so(yespo: Yespo) -> None:
    transport = _NoSearch(yespo.transport)
    (first,) = upsert_sync(yespo_config(mode="realtime"), "y", transport, [person(1)])
    assert first.status is Status.WRITTEN
    (again,) = upsert_sync(yespo_config(mode="realtime"), "y", transport, [person(1)])
    assert again.status is Status.FAILED
    assert again.error is not None
    # An identical request reached Yespo within the minute: perhaps applied, so neither
    # "not applied" (request_failed) nor offered for a blind resend.
    assert again.error.code == "outcome_unknown"
    assert not again.error.retryable
    assert "could not be looked up" in again.error.message
    assert any("could not be checked" in w for w in again.warnings)


def test_a_409_on_double_opt_in_attaches_its_segments_by_id(yespo: Yespo, upsert: Upsert) -> None:
    row = {"email": "new@example.com", "first_name": "New", "email_status": "pending",
           "groups": {"add": ["vip"]}}  # fmt: skip
    (first,) = upsert([row], mode="realtime")
    (again,) = upsert([row], mode="realtime")
    assert again.status is Status.WRITTEN
    assert again.remote_id == first.remote_id
    attach = [r for r in yespo.transport.requests if r.url.path.endswith("attach")]
    assert [json.loads(r.content) for r in attach] == [{"contactIds": [int(first.remote_id or 0)]}]
    (stored,) = yespo.stored()
    assert [g["name"] for g in stored["groups"]] == ["VIP"]
