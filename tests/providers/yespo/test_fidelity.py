"""Yespo: the mode never changes which contact a row lands on; bulk never merges people."""

from __future__ import annotations

from typing import Any

import httpx

from contactsync import Client, Status
from contactsync.testing import EmulatorApp
from tests.providers.yespo.conftest import Yespo, channel, direct, yespo_config


def seeded() -> tuple[Yespo, httpx.Client]:
    """An account holding an email-only contact, a deleted one, and one with an external id."""
    yespo = Yespo()
    api = direct(yespo.emulator)
    legacy = {"firstName": "Legacy", "channels": [{"type": "email", "value": "old@example.com"}]}
    assert api.post("/api/v1/contact", json=legacy).is_success
    gone = {"externalCustomerId": "gone", "firstName": "Gone",
            "channels": [{"type": "email", "value": "gone@example.com"}]}  # fmt: skip
    assert api.post("/api/v1/contact", json=gone).is_success
    assert api.delete("/api/v1/contact", params={"externalCustomerId": "gone"}).is_success
    ann = {"externalCustomerId": "ann", "firstName": "Ann",
           "channels": [{"type": "email", "value": "family@example.com"}]}  # fmt: skip
    assert api.post("/api/v1/contact", json=ann).is_success
    return yespo, api


ROWS: list[dict[str, Any]] = [
    {"external_id": "new-1", "first_name": "New", "email": "old@example.com"},
    {"external_id": "gone", "first_name": "Back", "email": "gone@example.com"},
    {"external_id": "carl", "first_name": "Carl", "email": "family@example.com"},
]


def state(yespo: Yespo) -> list[tuple[Any, ...]]:
    return sorted(
        (c.get("externalCustomerId") or "", c.get("firstName"), channel(c, "email"))
        for c in yespo.stored()
        if not str(c.get("externalCustomerId", "")).startswith("filler")
    )


def test_auto_stores_the_same_for_a_batch_of_1_and_a_batch_of_60() -> None:
    one, _ = seeded()
    singles = [one.upsert([row], mode="auto")[0] for row in ROWS]
    sixty, _ = seeded()
    fillers = [
        {"external_id": f"filler{n}", "first_name": "F", "email": f"f{n}@example.com"}
        for n in range(57)
    ]
    batch = sixty.upsert([*ROWS, *fillers], mode="auto")[:3]
    assert state(one) == state(sixty)
    assert [o.status for o in singles] == [o.status for o in batch]
    # What both store: the deleted contact is not restored (restore_deleted is off) ...
    assert batch[1].status is Status.FAILED
    assert ("gone", "Gone", "gone@example.com") not in state(sixty)
    # ... and no row lands on a record that does not carry its external id.
    assert ("", "Legacy", "old@example.com") in state(sixty)
    assert ("ann", "Ann", "family@example.com") in state(sixty)


def test_bulk_new_external_id_never_takes_over_another_persons_record() -> None:
    yespo, _ = seeded()
    (outcome,) = yespo.upsert([ROWS[2]], mode="bulk")
    assert outcome.status is Status.WRITTEN
    # Yespo's dedupeOn=email rule would write "carl" onto Ann's record (one email match).
    assert yespo.by_external("ann")["firstName"] == "Ann"
    carl = yespo.by_external("carl")
    assert (carl["firstName"], channel(carl, "email")) == ("Carl", "family@example.com")
    assert outcome.remote_id == str(carl["id"])


def test_bulk_email_change_of_a_contact_found_by_external_id_is_applied() -> None:
    yespo, _ = seeded()
    (outcome,) = yespo.upsert(
        [{"external_id": "ann", "first_name": "Ann", "email": "ann@example.com"}], mode="bulk"
    )
    assert outcome.status is Status.WRITTEN
    # With dedupeOn=email Yespo never updates the email: it would stay family@ silently.
    assert channel(yespo.by_external("ann"), "email") == "ann@example.com"


def test_pending_on_the_unsubscribed_list_is_reported_not_hidden() -> None:
    yespo = Yespo()
    person = {"external_id": "p1", "first_name": "Pat", "email": "pat@example.com"}
    yespo.upsert([person])
    yespo.emulator.unsubscribed.add("pat@example.com")
    (outcome,) = yespo.upsert([{**person, "email_status": "pending"}])
    assert outcome.status is Status.UPDATED  # the subscribe answer says new: false
    assert any("BLACKLISTED" in w and "stays unsubscribed" in w for w in outcome.warnings)
    assert "pat@example.com" in yespo.emulator.unsubscribed


def test_undocumented_import_status_is_not_polled_until_the_timeout() -> None:
    yespo = Yespo()
    polls: list[str] = []

    def odd_status(request: httpx.Request) -> httpx.Response:
        request.read()
        if "/importstatus/" in request.url.path:
            polls.append(request.url.path)
            return httpx.Response(200, json={"status": "QUEUED"})
        return yespo.transport.handle_request(request)

    with Client(yespo_config(mode="bulk"), "y", transport=httpx.MockTransport(odd_status),
                sleep=lambda s: None) as client:  # fmt: skip
        (outcome,) = list(client.upsert_many([ROWS[0]]))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert "undocumented import status 'QUEUED'" in outcome.error.message
    assert len(polls) == 1


def test_segment_look_up_pages_through_the_groups() -> None:
    yespo = Yespo()
    yespo.emulator.segments.clear()
    for n in range(600):  # all match the name filter (a substring), before the exact one
        yespo.emulator.segment(f"Newsletter {n:03d}")
    yespo.emulator.segment("Newsletter")
    (outcome,) = yespo.upsert([{**ROWS[0], "groups": {"add": ["news"]}}], mode="realtime")
    assert outcome.status is Status.WRITTEN
    (member,) = [c for c in yespo.stored() if c.get("externalCustomerId") == "new-1"]
    assert [g["name"] for g in member["groups"]] == ["Newsletter"]
    pages = [r.url.params["startindex"] for r in yespo.transport.requests
             if r.url.path == "/api/v1/groups" and r.url.params["name"] == "Newsletter"]  # fmt: skip
    assert pages == ["1", "501"]


def test_a_refused_bulk_row_never_fails_another_row_sharing_its_email() -> None:
    # Rows sharing an email never share a bulk (the engine serializes them), so a
    # failedContacts entry can only be matched back to the row it is about.
    from tests.reliability.scenarios import SCENARIOS  # noqa: PLC0415

    scenario = SCENARIOS[0]  # Yespo bulk
    app = EmulatorApp(scenario.emulator())
    records = [
        {"external_id": "a", "first_name": "1234", "email": "shared@example.com"},
        {"external_id": "b", "first_name": "Bob", "email": "shared@example.com"},
    ]
    with Client(scenario.config(), "r", emulator=app, sleep=lambda s: None) as client:
        outcomes = sorted(client.upsert_many(records), key=lambda o: o.index)
    assert [o.status.value for o in outcomes] == ["failed", "written"]
    stored = [c.get("externalCustomerId") for c in app.emulator.contacts()]
    assert stored == ["b"]
