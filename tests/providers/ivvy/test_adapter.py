"""The iVvy adapter through the engines, against the emulator."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from contactsync_ivvy import IvvyEmulator

from contactsync import Client, Outcome, Status
from contactsync.testing import Faults
from tests.providers.ivvy.conftest import Ivvy, ivvy_config

Upsert = Callable[..., list[Outcome]]


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {"external_id": f"c{n}", "first_name": f"First{n}", "last_name": f"Last{n}",
            "email": f"p{n}@example.com", **extra}  # fmt: skip


def bodies(ivvy: Ivvy, action: str) -> list[dict[str, Any]]:
    return [
        json.loads(r.content) for r in ivvy.transport.requests if r.url.params["action"] == action
    ]


def test_create_then_update_by_resolved_id(ivvy: Ivvy, upsert: Upsert) -> None:
    (first,) = upsert([person(1, phone="07911 123456")])
    # updateIfExists may have matched a contact the look-up could not find: "written".
    assert first.status is Status.WRITTEN
    (second,) = upsert([person(1, last_name="Changed")])
    assert second.status is Status.UPDATED
    assert second.remote_id == first.remote_id
    assert len(ivvy.emulator.contacts()) == 1
    stored = ivvy.by_external("c1")
    assert (stored["lastName"], stored["phone"]) == ("Changed", "+447911123456")
    assert ivvy.actions() == [
        "getContactList",  # by external id: none
        "getContactList",  # by name: no contact updateIfExists could land on
        "addOrUpdateContact",
        "getContactList",  # by external id: found, written by its id
        "addOrUpdateContact",
    ]
    create, update = bodies(ivvy, "addOrUpdateContact")
    assert create["updateIfExists"] is True
    assert "id" not in create
    assert update["id"] == int(first.remote_id or 0)
    assert "updateIfExists" not in update


def test_remote_id_skips_the_lookup(ivvy: Ivvy, upsert: Upsert) -> None:
    (created,) = upsert([person(1)])
    (updated,) = upsert([{"remote_id": created.remote_id, "sms_status": "no_marketing"}])
    assert updated.status is Status.UPDATED
    assert ivvy.actions()[-1:] == ["addOrUpdateContact"]
    assert bodies(ivvy, "addOrUpdateContact")[-1] == {
        "id": int(created.remote_id or 0),
        "smsStatus": 4,
    }


def test_update_needs_no_names_but_create_does(ivvy: Ivvy, upsert: Upsert) -> None:
    upsert([person(1)])
    (partial,) = upsert([{"external_id": "c1", "email_status": "unsubscribed"}])
    assert partial.status is Status.UPDATED
    assert ivvy.by_external("c1")["status"] == 2
    ivvy.transport.requests.clear()
    (unknown,) = upsert([{"external_id": "c9", "email_status": "unsubscribed"}])
    # Bad input, found out after one look-up: rejected (never retried from --failed).
    assert unknown.status is Status.REJECTED
    assert unknown.error is not None
    assert unknown.error.code == "invalid_contact"
    assert "needs first_name, last_name and email to create" in unknown.error.message
    assert "missing: first_name, last_name, email" in unknown.error.message
    assert ivvy.actions() == ["getContactList"]
    assert len(ivvy.emulator.contacts()) == 1


@pytest.mark.parametrize(
    ("contact", "field"),
    [
        ({"first_name": "A"}, "last_name"),
        ({"phone": "+447911123456", "email_status": "subscribed"}, "first_name"),
        ({"first_name": "A", "last_name": "B"}, "email"),
        ({"email": "a@example.com", "last_name": "B"}, "first_name"),
    ],
)
def test_no_id_no_external_id_and_no_create_triple_is_rejected_unsent(
    ivvy: Ivvy, contact: dict[str, Any], field: str
) -> None:
    (outcome,) = ivvy.upsert([contact])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.field) == ("invalid_contact", field)
    assert ivvy.transport.requests == []


def test_statuses_map_to_ivvy_integers(ivvy: Ivvy, upsert: Upsert) -> None:
    cases = [("subscribed", 1, "subscribed", 1), ("unsubscribed", 2, "unsubscribed", 2),
             ("bounced", 3, "bounced", 3), ("no_marketing", 5, "no_marketing", 4)]  # fmt: skip
    upsert([person(n, email_status=e, sms_status=s) for n, (e, _, s, _) in enumerate(cases)])
    for n, (_, email_code, _, sms_code) in enumerate(cases):
        stored = ivvy.by_external(f"c{n}")
        assert (stored["status"], stored["smsStatus"]) == (email_code, sms_code)


def test_pending_cannot_be_written(ivvy: Ivvy) -> None:
    outcomes = ivvy.upsert([person(1, email_status="pending"), person(2, sms_status="pending")])
    assert [o.status for o in outcomes] == [Status.REJECTED, Status.REJECTED]
    assert outcomes[0].error is not None
    assert "Registering is read-only" in outcomes[0].error.message
    assert ivvy.transport.requests == []


def test_groups_replace_uses_the_groups_field(ivvy: Ivvy, upsert: Upsert) -> None:
    upsert([person(1, groups=["vip", "news"])])
    assert [g["groupId"] for g in ivvy.by_external("c1")["groups"]] == [10, 11]
    upsert([person(1, groups=["events"])])
    assert [g["groupId"] for g in ivvy.by_external("c1")["groups"]] == [12]
    assert bodies(ivvy, "addOrUpdateContact")[-1]["groups"] == [{"groupId": 12}]


def test_add_remove_keep_memberships_set_elsewhere(ivvy: Ivvy, upsert: Upsert) -> None:
    (created,) = upsert([person(1)])
    contact_id = int(created.remote_id or 0)
    ivvy.emulator.records[contact_id]["groups"] = {
        13: "2024-01-01 00:00:00",
        11: "2024-01-01 00:00:00",
    }
    upsert([person(1, groups={"add": ["vip"], "remove": ["news"]})])
    assert [g["groupId"] for g in ivvy.by_external("c1")["groups"]] == [
        10,
        13,
    ]  # Staff (13) survived
    assert all("groups" not in b for b in bodies(ivvy, "addOrUpdateContact"))
    assert bodies(ivvy, "addContactsToSubscriptionGroup") == [
        {"contacts": [contact_id], "group": 10}
    ]
    assert bodies(ivvy, "removeContactsFromSubscriptionGroup") == [
        {"contacts": [contact_id], "group": 11}
    ]


def test_group_names_are_resolved_from_the_group_list(ivvy: Ivvy) -> None:
    config = ivvy_config()
    config["tenants"]["i"]["groups"] = {"vip": "VIP", "ghost": "No such group"}
    outcomes = ivvy.upsert(
        [person(1, groups={"add": ["vip"]}), person(2, groups={"add": ["ghost"]})], config=config
    )
    assert [o.status for o in outcomes] == [Status.WRITTEN, Status.REJECTED]
    assert outcomes[1].error is not None
    assert outcomes[1].error.field == "groups.add.ghost"
    assert ivvy.actions()[0] == "getSubscriptionGroupList"
    assert [g["groupId"] for g in ivvy.by_external("c1")["groups"]] == [10]


def test_custom_fields_and_type_checks(ivvy: Ivvy) -> None:
    outcomes = ivvy.upsert(
        [person(1, custom_fields={"loyalty": "gold", "visits": 4, "since": dt.date(2020, 1, 31)}),
         person(2, custom_fields={"loyalty": "platinum"}), person(3, custom_fields={"visits": "many"}),
         person(4, custom_fields={"loyalty": True})],
        check_field_types=True,
    )  # fmt: skip
    assert [o.status for o in outcomes] == [
        Status.WRITTEN,
        Status.REJECTED,
        Status.REJECTED,
        Status.REJECTED,
    ]
    assert [o.error.field for o in outcomes[1:] if o.error] == ["custom_fields.loyalty", "custom_fields.visits",
                                                                "custom_fields.loyalty"]  # fmt: skip
    stored = {f["fieldId"]: f["value"] for f in ivvy.by_external("c1")["customFields"]}
    assert stored == {501: "gold", 502: 4, 503: "2020-01-31"}
    assert ivvy.actions()[0] == "getCustomFieldDefinition"


def test_platform_refusal_is_failed_with_ivvy_codes(ivvy: Ivvy, upsert: Upsert) -> None:
    (outcome,) = upsert(
        [person(1, custom_fields={"visits": "many"})]
    )  # no type check: iVvy refuses
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.status_code == 400
    assert outcome.error.detail == {"errorCode": 400, "specificCode": 23016}
    assert not outcome.error.retryable


def test_unsupported_fields(ivvy: Ivvy) -> None:
    outcomes = ivvy.upsert(
        [person(1, address={"city": "Perth"}), person(2, tags=["x"]), person(3, language="en")]
    )
    assert {o.status for o in outcomes} == {Status.REJECTED}
    assert ivvy.transport.requests == []


def test_stale_request_says_check_the_clock() -> None:
    ivvy = Ivvy()
    ivvy.emulator.clock = lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    (outcome,) = ivvy.upsert([person(1)])
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert "check this machine's clock" in outcome.error.message
    # A refused signature stops the run's sending at once, like any refused credential.
    assert outcome.error.code == "auth_failed"


def test_several_contacts_with_one_external_id_update_the_latest(ivvy: Ivvy) -> None:
    ivvy.upsert([person(1)])
    older = ivvy.emulator.records[min(ivvy.emulator.records)]
    # A duplicate made outside contactsync, modified later than the original.
    twin = dict(
        older, id=older["id"] + 1000, customFields={}, groups={}, modifiedDate="2099-01-01 00:00:00"
    )
    ivvy.emulator.insert(twin)
    (outcome,) = ivvy.upsert([person(1, last_name="Z")])
    assert outcome.remote_id == str(twin["id"])
    assert outcome.warnings
    assert "2 contacts with externalId 'c1'" in outcome.warnings[0]


def test_lost_create_response_is_resent_without_a_duplicate() -> None:
    ivvy = Ivvy()
    lost = {"done": False}

    def lose_first_create(request: httpx.Request) -> httpx.Response:
        request.read()
        response = ivvy.app(request)
        if request.url.params["action"] == "addOrUpdateContact" and not lost["done"]:
            lost["done"] = True
            raise httpx.ReadError("response lost", request=request)
        return response

    with Client(
        ivvy_config(), "i", transport=httpx.MockTransport(lose_first_create), sleep=lambda s: None
    ) as client:
        (outcome,) = list(client.upsert_many([person(1)]))
    assert lost["done"]
    assert outcome.status is Status.WRITTEN  # resent with updateIfExists: it matched
    assert len(ivvy.emulator.contacts()) == 1


def test_plan_shows_lookup_then_create(ivvy: Ivvy) -> None:
    with Client(ivvy_config(), "i", transport=ivvy.transport) as client:
        planned = [p.to_json() for p in client.plan([person(1, groups={"add": ["vip"]})])]
    assert ivvy.transport.requests == []
    assert [p["url"].split("action=")[1] for p in planned] == [
        "getContactList",  # by external id
        "getContactList",  # by name: contacts updateIfExists could land on
        "addOrUpdateContact",
        "addContactsToSubscriptionGroup",
    ]
    assert planned[0]["headers"]["x-api-authorization"] == "***"
    assert planned[0]["url"].startswith("https://api.ap-southeast-2.ivvy.com/")


def test_region_picks_the_host() -> None:
    with Client(
        ivvy_config(region="UK"), "i", transport=httpx.MockTransport(lambda r: httpx.Response(500))
    ) as client:
        (planned,) = list(client.plan([{"remote_id": "5", "first_name": "A"}]))
    assert planned.url.startswith("https://api.eu-west-2.ivvy.com/api/1.0/contact")  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", [1, 2])
def test_faults_lose_nothing_and_duplicate_nothing(seed: int) -> None:
    ivvy = Ivvy(Faults(rate=0.3, seed=seed))
    contacts = [
        person(n, groups={"add": ["vip"]}, custom_fields={"loyalty": "gold"}) for n in range(80)
    ]
    config = ivvy_config()
    config["tenants"]["i"]["http"]["max_retries"] = 12
    outcomes = ivvy.upsert(contacts, config=config)
    assert sorted(o.index for o in outcomes) == list(range(80))
    assert {o.status for o in outcomes} == {Status.WRITTEN}
    stored = ivvy.emulator.contacts()
    assert sorted(c["externalId"] for c in stored) == sorted(f"c{n}" for n in range(80))
    for contact in stored:
        assert [g["groupId"] for g in contact["groups"]] == [10]
        assert contact["customFields"][0]["value"] == "gold"
    assert ivvy.app.faults_injected["lost"] > 0


def test_emulator_for_a_tenant_accepts_its_credentials() -> None:
    config = ivvy_config()
    config["tenants"]["i"]["credentials"] = {"api_key": "tenant-key", "api_secret": "tenant-secret"}
    config["tenants"]["i"]["base_url"] = "emulator"
    with Client(config, "i") as client:
        outcome = client.upsert(person(1, groups=["vip"]))
        emulator = client.emulator_app.emulator  # type: ignore[union-attr]
    assert isinstance(emulator, IvvyEmulator)
    assert outcome.status is Status.WRITTEN
    assert emulator.keys["tenant-key"] == "tenant-secret"


def test_contact_that_could_never_be_written_is_rejected_up_front(ivvy: Ivvy) -> None:
    (outcome,) = ivvy.upsert([{"email": "lonely@example.com", "email_status": "unsubscribed"}])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.field == "first_name"
    assert ivvy.transport.requests == []
