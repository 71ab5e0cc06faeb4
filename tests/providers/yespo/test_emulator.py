"""The Yespo emulator against Yespo's documentation (plain HTTP, no adapter)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from contactsync_yespo import DEMO_API_KEY, YespoEmulator

from contactsync.testing import EmulatorApp, EmulatorTransport
from tests.providers.yespo.conftest import channel, direct


def email_contact(email: str, **extra: Any) -> dict[str, Any]:
    return {"channels": [{"type": "email", "value": email}], **extra}


def bulk(client: httpx.Client, contacts: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
    body.setdefault("dedupeOn", "email")
    response = client.post("/api/v1/contacts", json={"contacts": contacts, **body})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def finish(client: httpx.Client, session: str, polls: int = 2) -> dict[str, Any]:
    """Poll ``session`` to its end: STARTED, IMPORTING for the rest of ``polls``, FINISHED."""
    states = [client.get(f"/api/v1/importstatus/{session}").json()["status"] for _ in range(polls)]
    assert states == ["STARTED"] + ["IMPORTING"] * (polls - 1)
    status = client.get(f"/api/v1/importstatus/{session}").json()
    assert status["status"] == "FINISHED"
    assert isinstance(status["mapping"], list)  # the spec's array, even of one element
    return status  # type: ignore[no-any-return]


@pytest.fixture
def emulator() -> YespoEmulator:
    return YespoEmulator()


@pytest.fixture
def api(emulator: YespoEmulator) -> httpx.Client:
    return direct(emulator)


def test_wrong_key_is_401(emulator: YespoEmulator) -> None:
    with direct(emulator, key="wrong") as client:
        assert (
            client.post("/api/v1/contact", json=email_contact("a@example.com")).status_code == 401
        )
    no_auth = httpx.Client(base_url="https://api.yespo.io", transport=direct(emulator)._transport)
    assert no_auth.get("/api/v1/addressbooks").status_code == 401


def test_more_than_200_requests_in_a_second_is_429() -> None:
    now = [0.0]
    emulator = YespoEmulator(clock=lambda: now[0])
    with direct(emulator) as api:
        codes = [api.get("/api/v1/groups").status_code for _ in range(201)]
        assert codes[:200] == [200] * 200
        assert codes[200] == 429
        now[0] = 1.5
        assert api.get("/api/v1/groups").status_code == 200


def test_identical_single_request_within_a_minute_is_409() -> None:
    now = [0.0]
    emulator = YespoEmulator(clock=lambda: now[0])
    with direct(emulator) as api:
        body = email_contact("a@example.com", firstName="Ann")
        assert api.post("/api/v1/contact", json=body).status_code == 200
        now[0] = 30.0
        assert api.post("/api/v1/contact", json=body).status_code == 409
        assert api.post("/api/v1/contact", json={**body, "lastName": "B"}).status_code == 200
        now[0] = 61.0
        assert api.post("/api/v1/contact", json=body).status_code == 200
    assert len(emulator.contacts()) == 1


def test_single_upsert_matches_external_id_first_and_restores_deleted(api: httpx.Client) -> None:
    first = api.post(
        "/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="X1")
    ).json()["id"]
    # Same external id, new email: the same contact is updated.
    again = api.post(
        "/api/v1/contact", json=email_contact("new@example.com", externalCustomerId="X1")
    ).json()["id"]
    assert again == first
    assert api.delete(f"/api/v1/contact/{first}").status_code == 200
    assert api.get(f"/api/v1/contact/{first}").status_code == 404
    restored = api.post(
        "/api/v1/contact", json=email_contact("n2@example.com", externalCustomerId="X1")
    ).json()["id"]
    assert restored == first
    assert api.get(f"/api/v1/contact/{first}").status_code == 200


def test_single_upsert_without_external_id_matches_email_or_phone(api: httpx.Client) -> None:
    one = api.post("/api/v1/contact", json=email_contact("a@example.com")).json()["id"]
    by_phone = api.post(
        "/api/v1/contact", json={"channels": [{"type": "sms", "value": "+447700900123"}]}
    ).json()["id"]
    assert one != by_phone
    same = api.post("/api/v1/contact", json=email_contact("A@example.com", firstName="Ann")).json()[
        "id"
    ]
    assert same == one
    phone_again = api.post(
        "/api/v1/contact",
        json={"channels": [{"type": "sms", "value": "447700900123"}], "lastName": "P"},
    ).json()["id"]
    assert phone_again == by_phone


def test_bulk_external_id_wins_over_dedupe_on(api: httpx.Client, emulator: YespoEmulator) -> None:
    finish(
        api, bulk(api, [email_contact("a@example.com", externalCustomerId="X1")])["asyncSessionId"]
    )
    finish(
        api, bulk(api, [email_contact("b@example.com", externalCustomerId="X2")])["asyncSessionId"]
    )
    # X1 with b's email, dedupeOn=sms: found by external id, not by b's email.
    result = bulk(api, [email_contact("b@example.com", externalCustomerId="X1", firstName="One")],
                  dedupeOn="sms", contactFields=["email", "firstName"])  # fmt: skip
    (mapping,) = finish(api, result["asyncSessionId"])["mapping"]
    assert mapping["dedupeValue"] == "X1"
    names = {
        c["externalCustomerId"]: (channel(c, "email"), c.get("firstName"))
        for c in emulator.contacts()
    }
    assert names == {"X1": ("b@example.com", "One"), "X2": ("b@example.com", None)}


def test_dedupe_on_email_keeps_the_email_even_on_an_external_id_match(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    finish(
        api, bulk(api, [email_contact("a@example.com", externalCustomerId="X1")])["asyncSessionId"]
    )
    finish(api, bulk(api, [email_contact("new@example.com", externalCustomerId="X1")],
                     contactFields=["email"])["asyncSessionId"])  # fmt: skip
    (stored,) = emulator.contacts()
    assert channel(stored, "email") == "a@example.com"


def test_bulk_unknown_external_id_adopts_a_match_without_one(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    api.post("/api/v1/contact", json=email_contact("a@example.com", firstName="NoExt"))
    finish(
        api, bulk(api, [email_contact("a@example.com", externalCustomerId="NEW")])["asyncSessionId"]
    )
    (only,) = emulator.contacts()
    assert only["externalCustomerId"] == "NEW"
    assert "firstName" not in only  # contactFields omitted: what was not sent became null


def test_bulk_latest_updated_match_is_used(api: httpx.Client, emulator: YespoEmulator) -> None:
    older = api.post(
        "/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="E1")
    ).json()["id"]
    newer = api.post(
        "/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="E2")
    ).json()["id"]
    assert older != newer
    result = bulk(
        api, [email_contact("a@example.com", firstName="Latest")], contactFields=["firstName"]
    )
    status = finish(api, result["asyncSessionId"])
    assert [m["contactId"] for m in status["mapping"]] == [newer]
    names = {c["id"]: c.get("firstName") for c in emulator.contacts()}
    assert names == {older: None, newer: "Latest"}


def test_bulk_one_match_without_external_id_takes_it(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    api.post("/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="OTHER"))
    free = api.post("/api/v1/contact", json=email_contact("A@EXAMPLE.com", lastName="Free")).json()
    # addContact without external id matched the first contact (same email): make a free one by bulk.
    assert len(emulator.contacts()) == 1
    emulator.records[free["id"]]["externalCustomerId"] = "OTHER"
    no_ext = emulator._new({"email": "a@example.com", "fields": {}})
    finish(api, bulk(api, [email_contact("a@example.com", externalCustomerId="MINE")],
                     contactFields=["email"])["asyncSessionId"])  # fmt: skip
    assert emulator.records[no_ext["id"]]["externalCustomerId"] == "MINE"
    assert len(emulator.contacts()) == 2


def test_bulk_all_matches_with_other_external_ids_creates_new(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    api.post("/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="E1"))
    api.post("/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="E2"))
    finish(api, bulk(api, [email_contact("a@example.com", externalCustomerId="E3")],
                     contactFields=["email"])["asyncSessionId"])  # fmt: skip
    assert sorted(c["externalCustomerId"] for c in emulator.contacts()) == ["E1", "E2", "E3"]


def test_bulk_deleted_contact_is_skipped_unless_restore_deleted(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    cid = api.post(
        "/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="D1")
    ).json()["id"]
    api.delete(f"/api/v1/contact/{cid}")
    skipped = finish(api, bulk(api, [email_contact("a@example.com", externalCustomerId="D1")],
                               contactFields=["email"])["asyncSessionId"])  # fmt: skip
    assert skipped["mapping"] == []
    assert emulator.contacts() == []
    restored = finish(api, bulk(api, [email_contact("a@example.com", externalCustomerId="D1")],
                                contactFields=["email"], restoreDeleted=True)["asyncSessionId"])  # fmt: skip
    assert [m["contactId"] for m in restored["mapping"]] == [cid]
    assert [c["id"] for c in emulator.contacts()] == [cid]


def test_bulk_without_contact_fields_nulls_what_was_not_sent(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    full = email_contact("a@example.com", externalCustomerId="N1", firstName="Ann", lastName="Lee",
                         languageCode="en", fields=[{"id": 1001, "value": "gold"}])  # fmt: skip
    finish(api, bulk(api, [full], customFieldsIDs=[1001])["asyncSessionId"])
    finish(
        api,
        bulk(api, [email_contact("a@example.com", externalCustomerId="N1", firstName="Ann")])[
            "asyncSessionId"
        ],
    )
    (stored,) = emulator.contacts()
    assert stored["firstName"] == "Ann"
    assert "lastName" not in stored
    assert "languageCode" not in stored
    assert stored["fields"] == [{"id": 1001, "value": "gold"}]  # customFieldsIDs omitted: kept


def test_bulk_with_contact_fields_writes_only_those(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    full = email_contact("a@example.com", externalCustomerId="N1", firstName="Ann", lastName="Lee",
                         fields=[{"id": 1001, "value": "gold"}, {"id": 1002, "value": "3"}])  # fmt: skip
    finish(api, bulk(api, [full], customFieldsIDs=[1001, 1002])["asyncSessionId"])
    partial = email_contact("a@example.com", externalCustomerId="N1", firstName="Bea",
                            fields=[{"id": 1002, "value": "4"}])  # fmt: skip
    finish(
        api,
        bulk(api, [partial], contactFields=["firstName"], customFieldsIDs=[1002])["asyncSessionId"],
    )
    (stored,) = emulator.contacts()
    assert (stored["firstName"], stored["lastName"]) == ("Bea", "Lee")
    assert stored["fields"] == [{"id": 1001, "value": "gold"}, {"id": 1002, "value": "4"}]


def test_dedupe_on_field_is_not_updated(api: httpx.Client, emulator: YespoEmulator) -> None:
    api.post("/api/v1/contact", json={"channels": [{"type": "email", "value": "a@example.com"},
                                                    {"type": "sms", "value": "+447700900001"}]})  # fmt: skip
    contact = {
        "channels": [
            {"type": "email", "value": "b@example.com"},
            {"type": "sms", "value": "+447700900001"},
        ]
    }
    finish(
        api, bulk(api, [contact], dedupeOn="sms", contactFields=["email", "sms"])["asyncSessionId"]
    )
    (stored,) = emulator.contacts()
    assert channel(stored, "email") == "b@example.com"
    assert channel(stored, "sms") == "+447700900001"


def test_failed_contacts_single_object_and_array(api: httpx.Client) -> None:
    one = bulk(api, [email_contact("ok@example.com"), {"channels": []}])
    assert isinstance(one["failedContacts"], dict)
    assert "channels" in one["failedContacts"]["error"]
    two = bulk(api, [email_contact("bad"), email_contact("x@example.com", firstName="A" * 41)])
    assert isinstance(two["failedContacts"], list)
    assert len(two["failedContacts"]) == 2
    assert all("externalCustomerId" not in f for f in two["failedContacts"])


def test_segments_attach_detach_and_empty_detach(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    seg = emulator.segment("VIP")["id"]
    a = api.post(
        "/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="A")
    ).json()["id"]
    b = api.post("/api/v1/contact", json=email_contact("b@example.com")).json()["id"]
    api.post(f"/api/v1/group/{seg}/contacts/attach", json={"externalCustomerIds": ["A"]})
    api.post(f"/api/v1/group/{seg}/contacts/attach", json={"contactIds": [b]})
    assert emulator.segment("VIP")["members"] == {a, b}
    api.post(f"/api/v1/group/{seg}/contacts/detach", json={"contactIds": [b]})
    assert emulator.segment("VIP")["members"] == {a}
    api.post(f"/api/v1/group/{seg}/contacts/detach", json={})
    assert emulator.segment("VIP")["members"] == set()
    found = api.get("/api/v1/groups", params={"name": "VIP"}).json()
    assert found == [{"id": seg, "name": "VIP", "type": "Static"}]  # an array, even of one


def test_bulk_group_names_add_and_exclude(api: httpx.Client, emulator: YespoEmulator) -> None:
    finish(
        api,
        bulk(api, [email_contact("a@example.com")], groupNames=["VIP", "News"])["asyncSessionId"],
    )
    finish(api, bulk(api, [email_contact("a@example.com")], contactFields=["email"],
                     groupNamesExclude=["News"])["asyncSessionId"])  # fmt: skip
    (stored,) = emulator.contacts()
    assert [g["name"] for g in stored["groups"]] == ["VIP"]


def test_subscribe_is_double_opt_in_and_reports_new(api: httpx.Client) -> None:
    first = api.post(
        "/api/v1/contact/subscribe",
        json={"contact": email_contact("s@example.com"), "groups": ["Subs"]},
    )
    assert first.json()["new"] is True
    assert first.json()["emailStatus"] == "NEED_CONFIRMATION"
    second = api.post(
        "/api/v1/contact/subscribe", json={"contact": email_contact("s@example.com", firstName="S")}
    )
    assert second.json()["new"] is False


def test_put_updates_by_id_and_refuses_a_taken_external_id(api: httpx.Client) -> None:
    a = api.post(
        "/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="A")
    ).json()["id"]
    b = api.post("/api/v1/contact", json=email_contact("b@example.com")).json()["id"]
    assert api.put(f"/api/v1/contact/{b}", json={"firstName": "Bee"}).status_code == 200
    assert api.get(f"/api/v1/contact/{b}").json()["firstName"] == "Bee"
    assert api.put(f"/api/v1/contact/{b}", json={"externalCustomerId": "A"}).status_code == 400
    assert api.put("/api/v1/contact/999", json={"firstName": "X"}).status_code == 400
    assert a != b


def test_address_books_collapse_and_search(api: httpx.Client) -> None:
    books = api.get("/api/v1/addressbooks").json()
    assert isinstance(books["addressBook"], dict)
    assert len(books["addressBook"]["fieldGroups"]["fields"]) == 4
    api.post("/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="Q"))
    found = api.get("/api/v1/contacts", params={"externalCustomerId": "Q"})
    assert found.headers["TotalCount"] == "1"
    assert "externalCustomerId" not in found.json()[0]  # BaseContact has no external id
    assert (
        api.get(
            "/api/v1/contacts", params={"externalCustomerId": "Q", "email": "a@example.com"}
        ).status_code
        == 400
    )


# --- documented answers, paging, async imports, rates ----------------------------------


def test_string_bodies_are_json_as_the_spec_documents(api: httpx.Client) -> None:
    cid = api.post(
        "/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="A")
    ).json()["id"]
    answers = [
        api.put(f"/api/v1/contact/{cid}", json={"lastName": "Lee"}),
        api.post("/api/v1/emails/unsubscribed/add", json={"emails": ["a@example.com"]}),
        api.post("/api/v1/emails/unsubscribed/delete", json={"emails": ["a@example.com"]}),
        api.delete(f"/api/v1/contact/{cid}"),
    ]  # fmt: skip
    for response in answers:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
        assert isinstance(response.json(), str)


def test_attach_and_detach_answer_a_json_string(api: httpx.Client, emulator: YespoEmulator) -> None:
    seg = emulator.segment("VIP")["id"]
    for action in ("attach", "detach"):
        response = api.post(f"/api/v1/group/{seg}/contacts/{action}", json={"contactIds": [1]})
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json() == "OK"


def test_groups_are_an_array_and_page(api: httpx.Client, emulator: YespoEmulator) -> None:
    ids = [emulator.segment(f"Seg {n}")["id"] for n in range(5)]
    one = api.get("/api/v1/groups", params={"name": "Seg 3"}).json()
    assert one == [{"id": ids[3], "name": "Seg 3", "type": "Static"}]
    pages = [
        api.get("/api/v1/groups", params={"name": "seg", "startindex": start, "maxrows": 2}).json()
        for start in (1, 3, 5)
    ]
    assert [[g["id"] for g in page] for page in pages] == [ids[:2], ids[2:4], ids[4:]]
    assert api.get("/api/v1/groups", params={"maxrows": 501}).status_code == 400
    assert api.get("/api/v1/groups", params={"startindex": 0}).status_code == 400


def test_an_import_is_applied_only_when_its_session_completes(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    session = bulk(api, [email_contact("a@example.com", externalCustomerId="A")])["asyncSessionId"]
    assert emulator.contacts() == []  # still queued
    assert api.get(f"/api/v1/importstatus/{session}").json()["status"] == "STARTED"
    assert api.get(f"/api/v1/importstatus/{session}").json()["status"] == "IMPORTING"
    assert emulator.contacts() == []
    done = api.get(f"/api/v1/importstatus/{session}").json()
    assert done["status"] == "FINISHED"
    assert [c["externalCustomerId"] for c in emulator.contacts()] == ["A"]
    assert done["mapping"] == [{"dedupeValue": "A", "contactId": emulator.contacts()[0]["id"]}]


def test_concurrent_imports_apply_in_the_order_they_complete(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    first = bulk(api, [email_contact("a@example.com", externalCustomerId="A", firstName="First")],
                 contactFields=["firstName"])["asyncSessionId"]  # fmt: skip
    second = bulk(api, [email_contact("a@example.com", externalCustomerId="A", firstName="Second")],
                  contactFields=["firstName"])["asyncSessionId"]  # fmt: skip
    assert set(emulator.pending_imports()) == {first, second}
    finish(api, second)
    finish(api, first)  # sent first, finished last: its value wins
    (stored,) = emulator.contacts()
    assert stored["firstName"] == "First"


def test_import_polls_knob() -> None:
    emulator = YespoEmulator(import_polls=0)
    with direct(emulator) as api:
        session = bulk(api, [email_contact("a@example.com")])["asyncSessionId"]
        assert len(emulator.contacts()) == 1  # applied on submission
        assert api.get(f"/api/v1/importstatus/{session}").json()["status"] == "FINISHED"
    with pytest.raises(ValueError, match="import_polls"):
        YespoEmulator(import_polls=-1)
    pending = YespoEmulator(import_polls=5)
    with direct(pending) as api:
        session = bulk(api, [email_contact("b@example.com")])["asyncSessionId"]
        pending.complete_import(session)
        assert len(pending.contacts()) == 1
        assert api.get(f"/api/v1/importstatus/{session}").json()["status"] == "FINISHED"


def test_bulk_unknown_external_id_with_one_email_match_updates_it(
    api: httpx.Client, emulator: YespoEmulator
) -> None:
    # The guide: "an externalCustomerId that doesn't exist ... and an email that does
    # exist: the existing contact is updated with the externalCustomerId".
    cid = api.post(
        "/api/v1/contact", json=email_contact("a@example.com", externalCustomerId="OLD")
    ).json()["id"]
    status = finish(api, bulk(api, [email_contact("a@example.com", externalCustomerId="NEW")],
                              contactFields=["email"])["asyncSessionId"])  # fmt: skip
    assert [m["contactId"] for m in status["mapping"]] == [cid]
    (only,) = emulator.contacts()
    assert (only["id"], only["externalCustomerId"]) == (cid, "NEW")


@pytest.mark.parametrize("value", ["addressBookId", "fields", "Email", "groups"])
def test_bulk_contact_fields_outside_the_enum_are_refused(
    api: httpx.Client, emulator: YespoEmulator, value: str
) -> None:
    response = api.post(
        "/api/v1/contacts",
        json={"contacts": [email_contact("a@example.com")], "dedupeOn": "email",
              "contactFields": ["email", value]},
    )  # fmt: skip
    assert response.status_code == 400
    assert value in response.text
    assert emulator.sessions == {}


def test_bulk_contact_fields_enum_values_without_data_are_accepted(api: httpx.Client) -> None:
    bulk(api, [email_contact("a@example.com")], contactFields=["email", "webpush", "ordersInfo"])


def test_search_is_limited_to_50_requests_a_second() -> None:
    now = [0.0]
    emulator = YespoEmulator(clock=lambda: now[0])
    app = EmulatorApp(emulator)
    with httpx.Client(base_url="https://api.yespo.io", auth=("any", DEMO_API_KEY),
                      transport=EmulatorTransport(app)) as api:  # fmt: skip
        searches = [api.get("/api/v1/contacts", params={"email": "x@example.com"}).status_code
                    for _ in range(51)]  # fmt: skip
        assert searches == [200] * 50 + [429]
        assert api.get("/api/v1/groups").status_code == 200  # another budget
    stats = app.stats()
    assert stats["answered_429"] == 1
    assert {w["name"]: w["max_in_window"] for w in stats["rate_limits"]} == {
        "search": 50,
        "shared": 1,
    }


def test_rate_limits_can_be_measured_without_enforcing() -> None:
    now = [0.0]
    app = EmulatorApp(YespoEmulator(clock=lambda: now[0]), enforce_rate_limits=False)
    with httpx.Client(base_url="https://api.yespo.io", auth=("any", DEMO_API_KEY),
                      transport=EmulatorTransport(app)) as api:  # fmt: skip
        assert {api.get("/api/v1/groups").status_code for _ in range(250)} == {200}
    assert app.stats()["max_requests_per_second"] == 250
    assert app.stats()["answered_429"] == 0
