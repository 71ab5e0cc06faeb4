"""The iVvy emulator against iVvy's documentation (signed HTTP, no adapter)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from contactsync_ivvy import IvvyEmulator

from tests.providers.ivvy.conftest import call, signed_client

BOBBY = {"firstName": "Bobby", "lastName": "Smith", "email": "bobby@example.com"}


@pytest.fixture
def emulator() -> IvvyEmulator:
    emulator = IvvyEmulator()
    emulator.add_group("VIP", 10)
    emulator.add_group("News", 11)
    emulator.add_field(33443, 0, "Notes")
    emulator.add_field(502, 8, "Visits")
    emulator.add_field(501, 2, "Level", ["gold", "silver"])
    return emulator


@pytest.fixture
def api(emulator: IvvyEmulator) -> httpx.Client:
    return signed_client(emulator)


def test_ping_and_signature_checks(emulator: IvvyEmulator, api: httpx.Client) -> None:
    assert "ack" in call(api, "ping", {}, namespace="test").json()
    wrong_secret = call(signed_client(emulator, secret="nope"), "ping", {}, namespace="test")
    assert wrong_secret.status_code == 401
    assert wrong_secret.json()["errorCode"] == 401
    unknown_key = call(signed_client(emulator, key="who"), "ping", {}, namespace="test")
    assert unknown_key.status_code == 401
    unsigned = httpx.Request("POST", "https://x.test/api/1.0/test?action=ping", json={})
    assert api._transport.handle_request(unsigned).status_code == 401


def test_stale_request_is_23005(emulator: IvvyEmulator) -> None:
    stale = call(
        signed_client(emulator, skew=dt.timedelta(minutes=-6)), "ping", {}, namespace="test"
    )
    assert stale.status_code == 401
    assert stale.json() == {"errorCode": 401, "message": "Request is stale", "specificCode": 23005}
    ahead = call(
        signed_client(emulator, skew=dt.timedelta(minutes=4)), "ping", {}, namespace="test"
    )
    assert ahead.status_code == 200


def test_tampered_body_fails_the_md5(emulator: IvvyEmulator, api: httpx.Client) -> None:
    request = api.build_request("POST", "/api/1.0/test?action=ping", json={"a": 1})
    signed = next(api._auth.sync_auth_flow(request))  # type: ignore[union-attr]
    tampered = httpx.Request("POST", signed.url, headers=signed.headers, content=b'{"a":2}')
    assert api._transport.handle_request(tampered).status_code == 401


def test_create_without_id_requires_the_triple(api: httpx.Client) -> None:
    missing = call(api, "addOrUpdateContact", {"firstName": "A", "email": "a@example.com"})
    assert missing.status_code == 400
    assert missing.json()["specificCode"] == 23017
    bad_email = call(api, "addOrUpdateContact", {**BOBBY, "email": "nope"})
    assert bad_email.json()["specificCode"] == 23016


def test_create_without_id_duplicates_unless_update_if_exists(
    emulator: IvvyEmulator, api: httpx.Client
) -> None:
    one = call(api, "addOrUpdateContact", BOBBY).json()
    two = call(api, "addOrUpdateContact", BOBBY).json()
    assert one["success"]
    assert two["success"]
    assert one["id"] != two["id"]  # no id and no updateIfExists: a second contact
    three = call(
        api, "addOrUpdateContact", {**BOBBY, "updateIfExists": True, "phone": "+61400000000"}
    ).json()
    assert three["id"] in (one["id"], two["id"])
    assert len(emulator.contacts()) == 2


def test_update_by_id_and_unknown_id(api: httpx.Client) -> None:
    created = call(api, "addOrUpdateContact", {**BOBBY, "externalId": "E1"}).json()["id"]
    updated = call(api, "addOrUpdateContact", {"id": created, "firstName": "Bob"}).json()
    assert updated == {"success": True, "id": created}
    got = call(api, "getContact", {"id": created}).json()
    assert (got["firstName"], got["lastName"], got["externalId"]) == ("Bob", "Smith", "E1")
    assert (
        call(api, "addOrUpdateContact", {"id": 999, "firstName": "X"}).json()["specificCode"]
        == 23016
    )
    assert call(api, "getContact", {"id": 999}).json()["specificCode"] == 24096


def test_groups_replace_and_add_remove_keep_others(api: httpx.Client) -> None:
    cid = call(
        api, "addOrUpdateContact", {**BOBBY, "groups": [{"groupId": 10}, {"groupId": 11}]}
    ).json()["id"]
    call(api, "addOrUpdateContact", {"id": cid, "groups": [{"groupId": 11}]})
    assert [g["groupId"] for g in call(api, "getContact", {"id": cid}).json()["groups"]] == [11]
    added = call(
        api, "addContactsToSubscriptionGroup", {"contacts": [cid, 4242], "group": 10}
    ).json()
    assert added == [{"contactId": cid, "status": True}, {"contactId": 4242, "status": False}]
    call(api, "removeContactsFromSubscriptionGroup", {"contacts": [cid], "group": 11})
    assert [g["groupId"] for g in call(api, "getContact", {"id": cid}).json()["groups"]] == [10]
    assert (
        call(api, "addOrUpdateContact", {"id": cid, "groups": [{"groupId": 99}]}).status_code == 400
    )
    listed = call(api, "getSubscriptionGroupList", {}).json()
    assert {g["groupName"]: g["memberCount"] for g in listed} == {"VIP": 1, "News": 0}


def test_statuses_and_read_only_registering(api: httpx.Client) -> None:
    cid = call(api, "addOrUpdateContact", {**BOBBY, "status": 5, "smsStatus": 4}).json()["id"]
    got = call(api, "getContact", {"id": cid}).json()
    assert (got["status"], got["smsStatus"]) == (5, 4)
    assert call(api, "addOrUpdateContact", {"id": cid, "status": 4}).json()["specificCode"] == 23016
    assert (
        call(api, "addOrUpdateContact", {"id": cid, "smsStatus": 5}).json()["specificCode"] == 23016
    )


def test_custom_fields_are_checked_against_their_type(api: httpx.Client) -> None:
    ok = call(api, "addOrUpdateContact", {**BOBBY, "customFields": [
        {"fieldId": 33443, "value": "No"}, {"fieldId": 502, "value": 3}, {"fieldId": 501, "value": "gold"}]})  # fmt: skip
    assert ok.status_code == 200
    for bad in (
        {"fieldId": 502, "value": "three"},
        {"fieldId": 501, "value": "bronze"},
        {"fieldId": 1, "value": "x"},
    ):
        response = call(api, "addOrUpdateContact", {"id": ok.json()["id"], "customFields": [bad]})
        assert response.json()["specificCode"] == 23016
    definitions = call(api, "getCustomFieldDefinition", {}).json()
    assert {d["fieldId"]: d["fieldType"] for d in definitions} == {33443: 0, 502: 8, 501: 2}


def test_get_contact_list_filters_and_pages(api: httpx.Client) -> None:
    for n in range(5):
        call(api, "addOrUpdateContact", {"firstName": f"F{n}", "lastName": "L", "email": f"e{n}@example.com",
                                         "externalId": f"X{n % 2}"})  # fmt: skip
    found = call(api, "getContactList", {"filter": {"externalId": "X1"}}).json()
    assert found["meta"]["totalResults"] == 2
    assert {r["email"] for r in found["results"]} == {"e1@example.com", "e3@example.com"}
    page = call(api, "getContactList", {"perPage": 2, "start": 4}).json()
    assert (page["meta"]["count"], page["meta"]["totalResults"]) == (1, 5)
    by_email = call(api, "getContactList", {"filter": {"email": "e2@example.com"}}).json()
    assert [r["firstName"] for r in by_email["results"]] == ["F2"]


def test_batch_runs_jobs_and_reports_results(api: httpx.Client) -> None:
    jobs = [{"namespace": "contact", "action": "addOrUpdateContact", "params": {**BOBBY, "email": f"b{n}@example.com"}}
            for n in range(3)] + [{"namespace": "contact", "action": "addOrUpdateContact", "params": {"firstName": "X"}}]  # fmt: skip
    async_id = call(
        api, "run", {"jobs": jobs, "callbackUrl": "https://example.com/cb"}, namespace="batch"
    ).json()["asyncId"]
    assert call(api, "progress", {"async": async_id}, namespace="batch").json() == {"progress": 100}
    results = call(api, "results", {"async": async_id}, namespace="batch").json()["results"]
    assert [r["response"].get("success", False) for r in results] == [True, True, True, False]
    assert results[3]["response"]["specificCode"] == 23017
    too_many = call(api, "run", {"jobs": jobs * 51}, namespace="batch").json()
    assert too_many["specificCode"] == 24448
    assert (
        call(api, "results", {"async": "nope"}, namespace="batch").json()["specificCode"] == 24115
    )
