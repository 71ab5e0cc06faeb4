"""The Gleantap adapter through the engines, against the emulator (bodies checked against the spec)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from contactsync import Client, ConfigError, Outcome, Status, load_config
from contactsync.testing import Faults
from tests.providers.gleantap.conftest import Gleantap, gleantap_config
from tests.providers.spec import require

Upsert = Callable[..., list[Outcome]]


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {"external_id": f"c{n}", "first_name": f"First{n}", "last_name": f"Last{n}",
            "email": f"p{n}@example.com", **extra}  # fmt: skip


def test_full_mapping(gleantap: Gleantap, upsert: Upsert) -> None:
    (outcome,) = upsert([person(1, phone="07911 123456", birth_date="1990-12-31",
                                address={"line1": "1 High St", "line2": "Flat 2", "city": "Leeds",
                                         "region": "W Yorks", "postal_code": "LS1 1AA"},
                                email_status="unsubscribed", sms_status="subscribed",
                                custom_fields={"loyalty": "gold", "visits": 3, "since": dt.date(2020, 1, 2)},
                                provider_options={"gleantap": {"gender": "f", "type": "member",
                                                               "created_date": "2024-01-02 03:04:05"}})],
                        source="web", sms_subscribed_sets_optin=True)  # fmt: skip
    assert outcome.status is Status.CREATED  # the look-ups found no one it could match
    (body,) = gleantap.bodies("newContact")
    assert body == {
        "app_id": "demo-app", "first_name": "First1", "last_name": "Last1", "email": "p1@example.com",
        "phone": "+447911123456", "user_id": "c1", "dob": "1990-12-31", "address": "1 High St, Flat 2",
        "city": "Leeds", "state": "W Yorks", "zip": "LS1 1AA", "optout_email": True, "optin_sms": True,
        "source": "web", "gender": "f", "type": "member", "created_date": "2024-01-02 03:04:05",
        "loyalty_level": "gold", "visits": 3, "since": "2020-01-02",
    }  # fmt: skip
    (stored,) = gleantap.emulator.contacts()
    assert outcome.remote_id == stored["_id"]


def test_second_run_and_changed_first_names_create_nothing(
    gleantap: Gleantap, upsert: Upsert
) -> None:
    upsert([person(n) for n in range(4)])
    upsert([person(n) for n in range(4)])
    renamed = upsert([person(n, first_name=f"New{n}") for n in range(4)])
    assert {o.status for o in renamed} == {Status.UPDATED}
    stored = gleantap.emulator.contacts()
    assert sorted(c["first_name"] for c in stored) == [f"New{n}" for n in range(4)]


def test_family_email_without_external_id_keeps_two_people_apart(
    gleantap: Gleantap, upsert: Upsert
) -> None:
    # Ann and Carl share a family address. Carl must never be written onto Ann's record.
    upsert([{"first_name": "Ann", "last_name": "Lee", "email": "family@example.com",
             "phone": "+447911123456", "custom_fields": {"loyalty": "gold"}}])  # fmt: skip
    (ann,) = gleantap.emulator.contacts()
    (outcome,) = upsert([{"first_name": "Carl", "last_name": "Smith", "email": "family@example.com",
                          "phone": "+447400123456", "custom_fields": {"loyalty": "bronze"}}])  # fmt: skip
    assert outcome.status is Status.WRITTEN  # Carl's phone was not looked up
    assert (
        "another first name ('Ann'), not 'Carl': written as a separate contact"
        in (outcome.warnings[0])
    )
    stored = {c["first_name"]: c for c in gleantap.emulator.contacts()}
    assert sorted(stored) == ["Ann", "Carl"]
    assert stored["Ann"] == ann  # untouched: last name, phone and attributes are Ann's
    assert (stored["Carl"]["last_name"], stored["Carl"]["phone"]) == ("Smith", "+447400123456")
    assert stored["Carl"]["loyalty_level"] == "bronze"
    assert outcome.remote_id == stored["Carl"]["_id"]
    # The first name sent is always the caller's.
    assert [b["first_name"] for b in gleantap.bodies("newContact")] == ["Ann", "Carl"]


def test_first_name_change_without_external_id_is_never_a_rename(
    gleantap: Gleantap, upsert: Upsert
) -> None:
    # Without user_id, "Anna" cannot be told apart from a different person at Ann's
    # address: Gleantap's own rule makes a second contact, and the outcome says so.
    upsert([{"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"}])
    (outcome,) = upsert(
        [{"first_name": "Anna", "last_name": "Lee-Smith", "email": "ann@example.com"}]
    )
    assert outcome.status is Status.CREATED  # no Anna at that address a moment ago
    assert "cannot be told apart from a different person" in outcome.warnings[0]
    stored = sorted((c["first_name"], c["last_name"]) for c in gleantap.emulator.contacts())
    assert stored == [("Ann", "Lee"), ("Anna", "Lee-Smith")]
    assert gleantap.paths().count("getCustomers") == 2
    # The same row again lands on "Anna" (email + first name): nothing new, no warning.
    (again,) = upsert(
        [{"first_name": "Anna", "last_name": "Lee-Smith", "email": "ann@example.com"}]
    )
    assert again.warnings == ()
    assert len(gleantap.emulator.contacts()) == 2


def test_look_up_members_without_the_email_asked_for_are_ignored(gleantap: Gleantap) -> None:
    # A spec-shaped sample answer: every string is "string". It describes no one.
    sample = {"members": [{"id": "string", "firstname": "string", "lastname": "string",
                           "email": "string", "phone": "string", "email_optout": 0,
                           "sms_optout": 0, "created_date": "2025-05-01T00:00:00Z"}]}  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("getCustomers"):
            return httpx.Response(200, json=sample)
        return gleantap.emulator.handle(request)

    with Client(gleantap_config(), "g", transport=httpx.MockTransport(answer)) as client:
        outcome = client.upsert(
            {"first_name": "Carl", "last_name": "Lee", "email": "c@example.com"}
        )
    assert outcome.status is Status.CREATED
    assert outcome.warnings == (
        "getCustomers answered 1 member(s) without the email asked for; ignored",
    )
    (stored,) = gleantap.emulator.contacts()
    assert stored["first_name"] == "Carl"


def test_without_lookup_the_documented_trap_duplicates(gleantap: Gleantap) -> None:
    gleantap.upsert(
        [{"first_name": "Ann", "last_name": "Lee", "phone": "+447911123456"}], lookup=False
    )
    gleantap.upsert(
        [{"first_name": "Anna", "last_name": "Lee", "phone": "+447911123456"}], lookup=False
    )
    assert len(gleantap.emulator.contacts()) == 2
    assert "getCustomers" not in gleantap.paths()


def test_tags_add_then_remove_in_two_requests(gleantap: Gleantap, upsert: Upsert) -> None:
    upsert([person(1, tags=["old", "keep"])])
    (outcome,) = upsert([person(1, tags={"add": ["vip", "new"], "remove": ["old"]})])
    assert outcome.status is Status.UPDATED
    (stored,) = gleantap.emulator.contacts()
    assert stored["tags"] == ["keep", "new", "vip"]
    bodies = gleantap.bodies("newContact")
    assert [(b.get("tags"), b.get("tag_action")) for b in bodies] == [
        ("old,keep", "add"),
        ("vip,new", "add"),
        ("old", "remove"),
    ]
    assert set(bodies[2]) == {
        "app_id",
        "first_name",
        "last_name",
        "user_id",
        "email",
        "tags",
        "tag_action",
    }


def test_sms_pending_starts_the_double_opt_in(gleantap: Gleantap, upsert: Upsert) -> None:
    (outcome,) = upsert([person(1, phone="+447911123456", sms_status="pending")])
    assert outcome.status is Status.CREATED
    # By user_id, email and phone: Gleantap holds no one it could match.
    assert gleantap.paths() == ["getCustomers"] * 3 + ["newContact", "optin"]
    assert gleantap.emulator.contacts()[0]["sms_optin_pending"] is True
    (missing,) = gleantap.upsert([person(2, sms_status="pending")])
    assert missing.status is Status.REJECTED
    assert missing.error is not None
    assert missing.error.field == "phone"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"first_name": None}, "first_name"),
        ({"last_name": None}, "last_name"),
        ({"external_id": None, "email": None}, "external_id"),
        ({"custom_fields": {"city": "x"}}, "custom_fields.city"),
        ({"custom_fields": {"bad name": 1}}, "custom_fields.bad name"),
        ({"custom_fields": {"loyalti": "gold"}}, "custom_fields.loyalti"),  # a typo
        ({"tags": ["a,b"]}, "tags.add"),
        ({"provider_options": {"gleantap": {"user_id": "x"}}}, "provider_options.gleantap.user_id"),
        (
            {"provider_options": {"gleantap": {"created_date": "2024-01-02"}}},
            "provider_options.gleantap.created_date",
        ),
    ],
)
def test_invalid_contacts_are_rejected_before_any_request(
    gleantap: Gleantap, extra: dict[str, Any], field: str
) -> None:
    (outcome,) = gleantap.upsert([{**person(1), **extra}])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.field == field
    assert gleantap.transport.requests == []


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"email_status": "pending"}, "email_status pending"),
        ({"sms_status": "no_marketing"}, "sms_status no_marketing"),
        ({"groups": {"add": ["x"]}}, "groups"),
        ({"tags": {"replace": ["x"]}}, "replacing all tags"),
        ({"sms_status": "subscribed"}, "sms_status subscribed without options.sms_subscribed"),
        ({"language": "en"}, "language"),
        ({"address": {"country": "GB"}}, "address.country"),
    ],
)
def test_unsupported_features(gleantap: Gleantap, extra: dict[str, Any], fragment: str) -> None:
    (outcome,) = gleantap.upsert([person(1, **extra)])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert fragment in outcome.error.message


def test_unmapped_custom_field_never_creates_an_attribute(gleantap: Gleantap) -> None:
    (outcome,) = gleantap.upsert([person(1, custom_fields={"loyalti": "gold"})])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "invalid_contact"
    assert "no platform field is mapped to it" in outcome.error.message
    assert gleantap.transport.requests == []
    assert gleantap.emulator.contacts() == []


def test_sms_subscribed_sets_optin_sms_only_when_the_tenant_opts_in(gleantap: Gleantap) -> None:
    (refused,) = gleantap.upsert([person(1, phone="+447911123456", sms_status="subscribed")])
    assert refused.status is Status.REJECTED
    assert refused.error is not None
    assert refused.error.code == "unsupported_feature"
    assert gleantap.transport.requests == []
    (sent,) = gleantap.upsert(
        [person(1, phone="+447911123456", sms_status="subscribed")],
        sms_subscribed_sets_optin=True,
    )
    assert sent.status is Status.CREATED
    (body,) = gleantap.bodies("newContact")
    assert body["optin_sms"] is True
    # Opting out needs no consent: unsubscribed is always sent.
    gleantap.upsert([person(1, phone="+447911123456", sms_status="unsubscribed")])
    assert gleantap.bodies("newContact")[-1]["optin_sms"] is False


def test_custom_field_attribute_names_are_checked_with_the_config() -> None:
    config = gleantap_config()
    config["tenants"]["g"]["custom_fields"] = {"visits": "visit count"}
    with pytest.raises(ConfigError, match=r"tenants\.g\.custom_fields\.visits: .*letters"):
        load_config(config).tenant("g")


def test_custom_field_mapped_onto_a_documented_name_is_a_config_error() -> None:
    config = gleantap_config()
    config["tenants"]["g"]["custom_fields"] = {"town": "city"}
    with pytest.raises(
        ConfigError, match=r"tenants\.g\.custom_fields\.town: 'city' is a field Gleantap documents"
    ):
        load_config(config).tenant("g")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"status": "error", "_id": "x"}),
        httpx.Response(200, json={"status": "success"}),
        httpx.Response(200, json={"status": "success", "_id": ""}),
        httpx.Response(200, text="ok"),
        httpx.Response(400, json={"message": "Invalid request"}),
    ],
)
def test_success_needs_2xx_status_success_and_an_id(answer: httpx.Response) -> None:
    with Client(
        gleantap_config(lookup=False), "g", transport=httpx.MockTransport(lambda r: answer)
    ) as client:
        outcome = client.upsert(person(1))
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.detail is not None
    assert outcome.error.detail["body"] == answer.text


def test_wrong_keys_fail_with_401(gleantap: Gleantap) -> None:
    config = gleantap_config()
    config["tenants"]["g"]["credentials"]["secret_key"] = "wrong-secret-key"
    (outcome,) = gleantap.upsert([person(1)], config=config)
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.status_code == 401


def test_plan_masks_both_keys(gleantap: Gleantap) -> None:
    with Client(gleantap_config(), "g", transport=gleantap.transport) as client:
        planned = [p.to_json() for p in client.plan([{"first_name": "A", "last_name": "B", "email": "a@example.com",
                                                       "tags": {"add": ["x"], "remove": ["y"]}}])]  # fmt: skip
    assert gleantap.transport.requests == []
    assert [p["url"].rsplit("/", 1)[1] for p in planned] == [
        "getCustomers",
        "newContact",
        "newContact",
    ]
    assert all(
        p["headers"]["x-api-key"] == "***" and p["headers"]["x-secret-key"] == "***"
        for p in planned
    )


def test_requests_were_checked_against_the_spec(gleantap: Gleantap) -> None:
    spec = require(gleantap.transport.spec)
    gleantap.upsert([person(1, tags={"add": ["a"], "remove": ["b"]}, custom_fields={"loyalty": "x"}),
                     {"first_name": "N", "last_name": "E", "email": "ne@example.com"}])  # fmt: skip
    assert len(gleantap.transport.requests) == 6  # 2 + 2 look-ups, 2 writes
    assert spec is gleantap.transport.spec


def test_faults_lose_nothing_and_duplicate_nothing() -> None:
    gleantap = Gleantap(Faults(rate=0.3, seed=5))
    contacts = [person(n, tags={"add": ["a"], "remove": ["b"]}) for n in range(60)]
    contacts += [
        {"first_name": f"N{n}", "last_name": "E", "email": f"n{n}@example.com"} for n in range(30)
    ]
    config = gleantap_config()
    config["tenants"]["g"]["http"]["max_retries"] = 15
    outcomes = gleantap.upsert(contacts, config=config)
    assert sorted(o.index for o in outcomes) == list(range(90))
    assert {o.status for o in outcomes} == {Status.CREATED}
    stored = gleantap.emulator.contacts()
    assert len(stored) == 90
    assert sorted(c.get("user_id", "") for c in stored if c.get("user_id")) == sorted(
        f"c{n}" for n in range(60)
    )
    assert all(c["tags"] == ["a"] for c in stored if c.get("user_id"))
    assert gleantap.app.faults_injected["lost"] > 0


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("ann@bücher.de", "ann@xn--bcher-kva.de"),  # Unicode domain: IDNA-encoded
        ("ann@xn--bcher-kva.de", "ann@xn--bcher-kva.de"),  # punycode: never turned to Unicode
        ("Ann@Straße.example", "Ann@xn--strae-oqa.example"),  # IDNA 2008 keeps ß
    ],
)
def test_email_domain_goes_out_idna_encoded(
    gleantap: Gleantap, upsert: Upsert, given: str, sent: str
) -> None:
    (outcome,) = upsert([person(1, email=given)])
    assert outcome.status is Status.CREATED
    (body,) = gleantap.bodies("newContact")
    assert body["email"] == sent
    (stored,) = gleantap.emulator.contacts()
    assert stored["email"] == sent
    # The same contact again matches the stored one (no second contact).
    upsert([person(1, email=given, external_id=None)])
    assert len(gleantap.emulator.contacts()) == 1


def test_email_with_a_non_ascii_local_part_is_rejected_not_sent(
    gleantap: Gleantap, upsert: Upsert
) -> None:
    (outcome,) = upsert([person(1, email="ánn@example.com")])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert "ASCII" in outcome.error.message
    assert gleantap.bodies("newContact") == []
