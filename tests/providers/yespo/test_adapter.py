"""The Yespo adapter through the engines, against the emulator (bodies checked against the spec)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from contactsync_yespo import DEMO_API_KEY

from contactsync import Client, ConfigError, Outcome, Status, load_config
from contactsync.testing import Faults
from tests.providers.spec import require, yespo_spec
from tests.providers.yespo.conftest import Yespo, channel, yespo_config

Upsert = Callable[..., list[Outcome]]


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {"external_id": f"c{n}", "email": f"p{n}@example.com", "first_name": f"P{n}", **extra}


def statuses(outcomes: list[Outcome]) -> list[str]:
    return [o.status.value for o in outcomes]


# --- real time --------------------------------------------------------------------------


def test_realtime_writes_then_repeat_is_written_not_unchanged(yespo: Yespo, upsert: Upsert) -> None:
    contacts = [person(1, phone="07911 123456", language="en", time_zone="Europe/London")]
    first = upsert(contacts, mode="realtime")
    assert statuses(first) == ["written"]  # Yespo does not say whether it created
    stored = yespo.by_external("c1")
    assert first[0].remote_id == str(stored["id"])
    assert channel(stored, "sms") == "+447911123456"
    assert (stored["languageCode"], stored["timeZone"]) == ("en", "Europe/London")
    second = upsert(contacts, mode="realtime")
    # 409 (identical request within a minute), verified: sent, so never "unchanged".
    assert statuses(second) == ["written"]
    assert len(yespo.stored()) == 1


def test_realtime_remote_id_updates_by_put(yespo: Yespo, upsert: Upsert) -> None:
    (created,) = upsert([person(1)], mode="realtime")
    (updated,) = upsert([{"remote_id": created.remote_id, "email": "p1@example.com", "last_name": "New"}],
                        mode="realtime")  # fmt: skip
    assert updated.status is Status.UPDATED
    assert updated.remote_id == created.remote_id
    assert yespo.by_external("c1")["lastName"] == "New"
    assert f"PUT /api/v1/contact/{created.remote_id}" in yespo.paths()


def test_realtime_refusal_is_failed_with_the_reason(yespo: Yespo, upsert: Upsert) -> None:
    (outcome,) = upsert([person(1, first_name="12345")], mode="realtime")
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.status_code == 400
    assert "firstName is invalid" in outcome.error.message


def test_realtime_segments_attach_and_detach_by_external_id(yespo: Yespo, upsert: Upsert) -> None:
    upsert([person(1, groups={"add": ["vip", "news"]})], mode="realtime")
    assert [g["name"] for g in yespo.by_external("c1")["groups"]] == ["VIP", "Newsletter"]
    upsert([person(1, groups={"remove": ["news"]})], mode="realtime")
    assert [g["name"] for g in yespo.by_external("c1")["groups"]] == ["VIP"]
    bodies = [
        json.loads(r.content) for r in yespo.transport.requests if r.url.path.endswith("detach")
    ]
    assert bodies == [{"externalCustomerIds": ["c1"]}]  # never an empty detach


def test_realtime_segment_by_contact_id_without_external_id(yespo: Yespo, upsert: Upsert) -> None:
    (outcome,) = upsert(
        [{"email": "solo@example.com", "groups": {"add": ["vip"]}}], mode="realtime"
    )
    (stored,) = yespo.stored()
    assert [g["name"] for g in stored["groups"]] == ["VIP"]
    attach = [
        json.loads(r.content) for r in yespo.transport.requests if r.url.path.endswith("attach")
    ]
    assert attach == [{"contactIds": [int(outcome.remote_id or 0)]}]


def test_missing_segment_fails_the_contact_but_keeps_its_id(yespo: Yespo) -> None:
    config = yespo_config(mode="realtime")
    config["tenants"]["y"]["groups"]["ghost"] = "No such segment"
    with Client(config, "y", transport=yespo.transport, sleep=lambda s: None) as client:
        outcome = client.upsert(person(1, groups={"add": ["ghost"]}))
    assert outcome.status is Status.FAILED
    assert outcome.remote_id is not None
    assert outcome.error is not None
    assert "no segment named 'No such segment'" in outcome.error.message


def test_email_statuses_use_the_unsubscribed_list(yespo: Yespo, upsert: Upsert) -> None:
    upsert(
        [person(1, email_status="unsubscribed"), person(2, email_status="unsubscribed")],
        mode="bulk",
    )
    assert yespo.emulator.unsubscribed == {"p1@example.com", "p2@example.com"}
    unsubscribe_calls = [
        r for r in yespo.transport.requests if r.url.path.endswith("unsubscribed/add")
    ]
    assert len(unsubscribe_calls) == 1  # one request for the whole batch
    (refused,) = upsert([person(1, email_status="subscribed")], mode="realtime")
    # Re-subscribing an address is the tenant's explicit choice (options.resubscribe).
    assert refused.status is Status.REJECTED
    assert refused.error is not None
    assert "without options.resubscribe" in refused.error.message
    assert yespo.emulator.unsubscribed == {"p1@example.com", "p2@example.com"}
    upsert([person(1, email_status="subscribed")], mode="realtime", resubscribe=True)
    assert yespo.emulator.unsubscribed == {"p2@example.com"}


def test_pending_goes_through_double_opt_in(yespo: Yespo, upsert: Upsert) -> None:
    (outcome,) = upsert([person(1, email_status="pending", groups={"add": ["vip"]})], mode="auto")
    assert outcome.status is Status.CREATED  # subscribe says whether the contact is new
    assert "POST /api/v1/contact/subscribe" in yespo.paths()
    assert not yespo.emulator.records[int(outcome.remote_id or 0)]["confirmed"]
    assert [g["name"] for g in yespo.by_external("c1")["groups"]] == ["VIP"]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"email_status": "bounced"}, "email_status bounced"),
        ({"sms_status": "subscribed"}, "sms_status subscribed"),
        ({"tags": ["x"]}, "tags"),
        ({"groups": ["vip"]}, "replacing all groups"),
        ({"birth_date": "1990-01-01"}, "birth_date"),
        ({"address": {"city": "Leeds", "country": "GB"}}, "address.country"),
    ],
)
def test_what_yespo_cannot_express_is_rejected(
    yespo: Yespo, extra: dict[str, Any], fragment: str
) -> None:
    (outcome,) = yespo.upsert([person(1, **extra)])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "unsupported_feature"
    assert fragment in outcome.error.message
    assert yespo.writes() == []


def test_warn_policy_sends_the_rest(yespo: Yespo) -> None:
    config = yespo_config(mode="realtime")
    config["tenants"]["y"]["on_unsupported"] = "warn"
    with Client(config, "y", transport=yespo.transport) as client:
        outcome = client.upsert(person(1, tags=["x"], address={"city": "Leeds", "country": "GB"}))
    assert outcome.status is Status.WRITTEN
    assert len(outcome.warnings) == 2
    assert yespo.by_external("c1")["address"] == {"town": "Leeds"}


# --- bulk -------------------------------------------------------------------------------


def test_bulk_sends_explicit_contact_fields_and_maps_ids(yespo: Yespo, upsert: Upsert) -> None:
    outcomes = upsert([person(n) for n in range(5)], mode="bulk")
    assert statuses(outcomes) == ["written"] * 5
    (post,) = [r for r in yespo.transport.requests if r.url.path == "/api/v1/contacts"]
    body = json.loads(post.content)
    assert body["contactFields"] == ["email", "externalCustomerId", "firstName"]
    assert body["customFieldsIDs"] == []
    # Contacts with an external id are matched on it alone, never by email.
    assert body["dedupeOn"] == "externalCustomerId"
    ids = {c["externalCustomerId"]: str(c["id"]) for c in yespo.stored()}
    assert [o.remote_id for o in outcomes] == [ids[f"c{n}"] for n in range(5)]
    # In progress for import_polls polls, then FINISHED.
    polls = yespo.paths().count("GET /api/v1/importstatus/" + yespo.emulator.sessions.popitem()[0])
    assert polls == yespo.emulator.import_polls + 1


def test_bulk_never_nulls_fields_the_input_did_not_set(yespo: Yespo, upsert: Upsert) -> None:
    upsert([person(1, last_name="Lee", language="en", custom_fields={"loyalty": "gold", "visits": 3})],
           mode="bulk")  # fmt: skip
    # A sparse update in the same run as fuller contacts: field sets never share a request.
    upsert([{"external_id": "c1", "email": "p1@example.com", "custom_fields": {"visits": 4}},
            person(2, last_name="Other", custom_fields={"loyalty": "silver"})], mode="bulk")  # fmt: skip
    stored = yespo.by_external("c1")
    assert (stored["firstName"], stored["lastName"], stored["languageCode"]) == ("P1", "Lee", "en")
    assert stored["fields"] == [{"id": 1001, "value": "gold"}, {"id": 1002, "value": "4"}]
    posts = [
        json.loads(r.content) for r in yespo.transport.requests if r.url.path == "/api/v1/contacts"
    ]
    assert [(p["contactFields"], p["customFieldsIDs"]) for p in posts[1:]] in (
        [(["email", "externalCustomerId"], [1002]),
         (["email", "externalCustomerId", "firstName", "lastName"], [1001])],
        [(["email", "externalCustomerId", "firstName", "lastName"], [1001]),
         (["email", "externalCustomerId"], [1002])],
    )  # fmt: skip


def test_bulk_failed_contact_as_object_maps_to_its_input(yespo: Yespo, upsert: Upsert) -> None:
    outcomes = upsert([person(1), person(2, first_name="123"), person(3)], mode="bulk")
    assert statuses(outcomes) == ["written", "failed", "written"]
    error = outcomes[1].error
    assert error is not None
    assert "firstName is invalid" in error.message


def test_bulk_failed_contacts_as_array(yespo: Yespo, upsert: Upsert) -> None:
    outcomes = upsert(
        [person(1, first_name="1"), person(2), person(3, first_name="9")], mode="bulk"
    )
    assert statuses(outcomes) == ["failed", "written", "failed"]


def test_bulk_groups_go_in_group_names(yespo: Yespo, upsert: Upsert) -> None:
    upsert([person(n, groups={"add": ["vip"], "remove": ["news"]}) for n in range(3)], mode="bulk")
    posts = [
        json.loads(r.content) for r in yespo.transport.requests if r.url.path == "/api/v1/contacts"
    ]
    assert [(p["groupNames"], p["groupNamesExclude"]) for p in posts] == [(["VIP"], ["Newsletter"])]
    assert all([g["name"] for g in c["groups"]] == ["VIP"] for c in yespo.stored())


def test_bulk_session_error_fails_the_batch(yespo: Yespo) -> None:
    def broken_status(request: httpx.Request) -> httpx.Response:
        request.read()
        if "/importstatus/" in request.url.path:
            return httpx.Response(200, json={"status": "ERROR", "description": "disk full"})
        return yespo.transport.handle_request(request)

    with Client(yespo_config(mode="bulk"), "y", transport=httpx.MockTransport(broken_status),
                sleep=lambda s: None) as client:  # fmt: skip
        outcomes = list(client.upsert_many([person(1), person(2)]))
    assert {o.status for o in outcomes} == {Status.FAILED}
    assert all("ERROR: disk full" in (o.error.message if o.error else "") for o in outcomes)


def test_bulk_poll_gives_up_after_the_timeout(yespo: Yespo) -> None:
    def never_done(request: httpx.Request) -> httpx.Response:
        request.read()
        if "/importstatus/" in request.url.path:
            return httpx.Response(200, json={"status": "IMPORTING"})
        return yespo.transport.handle_request(request)

    waits: list[float] = []
    with Client(yespo_config(mode="bulk", poll_interval=1.0, poll_timeout=60.0), "y",
                transport=httpx.MockTransport(never_done), sleep=waits.append) as client:  # fmt: skip
        (outcome,) = list(client.upsert_many([person(1)]))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert "TIMEOUT" in outcome.error.message
    assert waits[:4] == [1.0, 1.5, 2.25, 3.375]
    assert max(waits) <= 30.0
    assert 60.0 <= sum(waits) < 90.0


def test_bulk_rejects_contacts_it_could_not_find_again(yespo: Yespo) -> None:
    outcomes = yespo.upsert([{"phone": "+447911123456", "first_name": "NoEmail"}], mode="bulk")
    assert outcomes[0].status is Status.REJECTED
    assert outcomes[0].error is not None
    assert "dedupeOn=email needs external_id or email" in outcomes[0].error.message
    ok = yespo.upsert([{"phone": "+447911123456"}], mode="bulk", dedupe_on="sms")
    assert ok[0].status is Status.WRITTEN


def test_auto_mode_uses_bulk_at_every_batch_size(yespo: Yespo) -> None:
    yespo.upsert([person(n) for n in range(4)], mode="auto")
    yespo.upsert([person(9, last_name="L")], mode="auto")
    paths = yespo.paths()
    assert paths.count("POST /api/v1/contacts") == 2
    assert paths.count("POST /api/v1/contact") == 0


def test_bulk_threshold_is_a_config_error_now() -> None:
    with pytest.raises(ConfigError, match=r"options\.bulk_threshold: no longer used"):
        load_config(yespo_config(mode="auto", bulk_threshold=3)).tenant("y")


def test_ten_thousand_contacts_use_the_minimum_number_of_bulk_requests(yespo: Yespo) -> None:
    contacts = [person(n) for n in range(7000)] + [
        person(n, last_name="L") for n in range(7000, 10_000)
    ]
    outcomes = yespo.upsert(contacts, mode="bulk")
    assert len(outcomes) == 10_000
    assert {o.status for o in outcomes} == {Status.WRITTEN}
    # Two field sets: ceil(7000 / 3000) + ceil(3000 / 3000) requests.
    assert yespo.paths().count("POST /api/v1/contacts") == 4
    assert len(yespo.stored()) == 10_000


# --- custom fields ----------------------------------------------------------------------


def test_custom_values_are_serialized_as_yespo_strings(yespo: Yespo, upsert: Upsert) -> None:
    upsert([person(1, custom_fields={"loyalty": "gold", "visits": 12, "since": dt.date(2020, 2, 29),
                                     "notes": 2.5})], mode="realtime")  # fmt: skip
    fields = {f["id"]: f["value"] for f in yespo.by_external("c1")["fields"]}
    assert fields == {1001: "gold", 1002: "12", 1003: "2020-02-29", 1004: "2.5"}


def test_field_types_are_checked_when_definitions_are_read(yespo: Yespo) -> None:
    outcomes = yespo.upsert(
        [person(1, custom_fields={"visits": "many"}), person(2, custom_fields={"loyalty": "platinum"}),
         person(3, custom_fields={"visits": 2**31}), person(4, custom_fields={"visits": 7})],
        mode="realtime", check_field_types=True,
    )  # fmt: skip
    assert statuses(outcomes) == ["rejected", "rejected", "rejected", "written"]
    assert [o.error.field for o in outcomes[:3] if o.error] == ["custom_fields.visits",
                                                                 "custom_fields.loyalty",
                                                                 "custom_fields.visits"]  # fmt: skip
    assert [p for p in yespo.paths() if p.startswith("GET")][-1] == "GET /api/v1/addressbooks"
    assert yespo.paths().index("GET /api/v1/addressbooks") < yespo.paths().index(
        "POST /api/v1/contact"
    )


def test_unmapped_custom_field_and_aware_datetime_are_rejected(yespo: Yespo) -> None:
    outcomes = yespo.upsert([
        person(1, custom_fields={"shoe_size": 9}),
        person(2, custom_fields={"since": dt.datetime(2024, 1, 1, 9, 30, tzinfo=dt.UTC)}),
    ])  # fmt: skip
    assert [o.error.field for o in outcomes if o.error] == [
        "custom_fields.shoe_size",
        "custom_fields.since",
    ]


def test_name_longer_than_yespo_keeps_is_rejected(yespo: Yespo) -> None:
    (outcome,) = yespo.upsert([person(1, first_name="A" * 41)])
    assert outcome.error is not None
    assert outcome.error.field == "first_name"


# --- plan, auth, faults -----------------------------------------------------------------


def test_plan_shows_the_bulk_flow_and_sends_nothing(yespo: Yespo) -> None:
    with Client(yespo_config(mode="bulk"), "y", transport=yespo.transport) as client:
        planned = [p.to_json() for p in client.plan([person(1, email_status="unsubscribed")])]
    assert yespo.writes() == []
    # The setup's segment look-ups are read-only: plan sends them (and says so).
    assert {(p["method"], p["url"].split("?")[0]) for p in planned if p["sent"]} == {
        ("GET", "https://api.yespo.io/api/v1/groups")
    }
    assert [(p["method"], p["url"].split("?")[0]) for p in planned if not p["sent"]] == [
        ("POST", "https://api.yespo.io/api/v1/contacts"),
        ("GET", "https://api.yespo.io/api/v1/importstatus/planned"),
        ("POST", "https://api.yespo.io/api/v1/emails/unsubscribed/add"),
    ]
    assert planned[0]["headers"]["authorization"] == "***"


def test_wrong_key_fails_every_contact_with_401(yespo: Yespo) -> None:
    config = yespo_config(mode="realtime")
    config["tenants"]["y"]["credentials"]["api_key"] = "not-" + DEMO_API_KEY
    with Client(config, "y", transport=yespo.transport) as client:
        (outcome,) = list(client.upsert_many([person(1)]))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.status_code == 401


@pytest.mark.parametrize("mode", ["realtime", "bulk"])
def test_faults_lose_nothing_and_duplicate_nothing(mode: str) -> None:
    yespo = Yespo(Faults(rate=0.3, seed=7))
    contacts = [
        person(n, custom_fields={"loyalty": "gold"}, groups={"add": ["vip"]}) for n in range(120)
    ]
    config = yespo_config(mode=mode)
    config["tenants"]["y"]["http"]["max_retries"] = 12
    with Client(config, "y", transport=yespo.transport, sleep=lambda s: None) as client:
        outcomes = list(client.upsert_many(contacts))
    assert sorted(o.index for o in outcomes) == list(range(120))
    # Every contact is new and was sent: never "updated", never "unchanged" (a 409
    # after a lost answer is the request itself seen twice).
    assert {o.status for o in outcomes} == {Status.WRITTEN}
    stored = yespo.stored()
    assert sorted(c["externalCustomerId"] for c in stored) == sorted(f"c{n}" for n in range(120))
    for contact in stored:
        assert contact["fields"] == [{"id": 1001, "value": "gold"}]
        assert [g["name"] for g in contact["groups"]] == ["VIP"]
    assert sum(yespo.app.faults_injected.values()) > 0


def test_adapter_requests_were_checked_against_the_spec(yespo: Yespo) -> None:
    spec = require(yespo_spec())
    assert yespo.transport.spec is spec
    yespo.upsert([person(1, groups={"add": ["vip"]}, email_status="unsubscribed")], mode="realtime")
    yespo.upsert([person(2, custom_fields={"visits": 1})], mode="bulk")
    assert len(yespo.transport.requests) >= 6  # each one validated on the way


def test_bulk_address_book_option_is_in_the_body_not_in_contact_fields(
    yespo: Yespo, upsert: Upsert
) -> None:
    # addressBookId is a Contact property, not a standard field contactFields may name
    # (the spec's item enum): listing it made Yespo refuse the whole bulk request.
    contacts = [
        person(n, provider_options={"yespo": {"addressBookId": 7200, "contactKey": f"k{n}"}})
        for n in range(3)
    ]
    outcomes = upsert(contacts, mode="bulk")
    assert statuses(outcomes) == ["written"] * 3
    (post,) = [r for r in yespo.transport.requests if r.url.path == "/api/v1/contacts"]
    body = json.loads(post.content)
    assert "addressBookId" not in body["contactFields"]
    assert "contactKey" in body["contactFields"]
    assert [c["addressBookId"] for c in body["contacts"]] == [7200] * 3
    assert yespo.by_external("c1")["contactKey"] == "k1"
