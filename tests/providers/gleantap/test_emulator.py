"""The Gleantap emulator against Gleantap's documentation (plain HTTP, no adapter)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from contactsync_gleantap import DEMO_APP_ID, GleantapEmulator

from tests.providers.gleantap.conftest import direct

NEW = "/v2/ExternalApi/newContact"


@pytest.fixture
def emulator() -> GleantapEmulator:
    return GleantapEmulator()


@pytest.fixture
def api(emulator: GleantapEmulator) -> httpx.Client:
    return direct(emulator)


def post(api: httpx.Client, **body: Any) -> httpx.Response:
    return api.post(NEW, json={"app_id": DEMO_APP_ID, **body})


def test_wrong_keys_are_401_and_unknown_app_is_400(
    emulator: GleantapEmulator, api: httpx.Client
) -> None:
    assert direct(emulator, secret="nope").post(NEW, json={}).status_code == 401
    assert (
        api.post(NEW, json={"app_id": "other", "first_name": "A", "last_name": "B"}).status_code
        == 400
    )


def test_required_fields_and_invalid_input_are_400(api: httpx.Client) -> None:
    assert post(api, first_name="A").status_code == 400
    assert post(api, first_name="A", last_name="B", email="nope").status_code == 400
    assert post(api, first_name="A", last_name="B", dob="31/12/1990").status_code == 400
    assert post(api, first_name="A", last_name="B", optin_sms="yes").status_code == 400
    ok = post(api, first_name="A", last_name="B")
    assert ok.status_code == 200
    assert ok.json()["status"] == "success"
    assert ok.json()["_id"]


def test_user_id_matches_first(emulator: GleantapEmulator, api: httpx.Client) -> None:
    one = post(api, first_name="Ann", last_name="L", user_id="U1", email="a@example.com").json()[
        "_id"
    ]
    same = post(
        api, first_name="Anna", last_name="L", user_id="U1", email="other@example.com"
    ).json()["_id"]
    assert same == one
    assert emulator.records[one]["first_name"] == "Anna"


def test_email_and_first_name_match_and_a_new_first_name_duplicates(
    emulator: GleantapEmulator, api: httpx.Client
) -> None:
    one = post(api, first_name="Ann", last_name="L", email="a@example.com").json()["_id"]
    assert post(api, first_name="Ann", last_name="X", email="A@example.com").json()["_id"] == one
    other = post(api, first_name="Anna", last_name="L", email="a@example.com").json()["_id"]
    assert other != one  # the documented trap
    assert len(emulator.records) == 2


def test_phone_and_first_name_match(api: httpx.Client) -> None:
    one = post(api, first_name="Bo", last_name="L", phone="+447911123456").json()["_id"]
    assert post(api, first_name="Bo", last_name="M", phone="447911123456").json()["_id"] == one
    assert post(api, first_name="Bob", last_name="M", phone="+447911123456").json()["_id"] != one


def test_unmatched_user_id_falls_back_to_email(api: httpx.Client) -> None:
    one = post(api, first_name="Cy", last_name="L", email="c@example.com").json()["_id"]
    assert (
        post(api, first_name="Cy", last_name="L", email="c@example.com", user_id="U9").json()["_id"]
        == one
    )


def test_without_the_fallback_an_unmatched_user_id_creates() -> None:
    # The other reading of an undocumented point: a user_id turns the other rules off.
    api = direct(GleantapEmulator(user_id_falls_back=False))
    one = post(api, first_name="Cy", last_name="L", email="c@example.com", user_id="U1")
    two = post(api, first_name="Cy", last_name="L", email="c@example.com", user_id="U9")
    assert one.json()["_id"] != two.json()["_id"]
    # Without a user_id the email rule still applies.
    three = post(api, first_name="Cy", last_name="M", email="c@example.com")
    assert three.json()["_id"] == one.json()["_id"]


def test_custom_attributes_tags_and_flags(emulator: GleantapEmulator, api: httpx.Client) -> None:
    cid = post(api, first_name="D", last_name="L", user_id="U", loyalty_level="gold", tags="a, b",
               tag_action="add", optin_sms=True, optout_email=True).json()["_id"]  # fmt: skip
    post(api, first_name="D", last_name="L", user_id="U", tags="a,c", tag_action="remove")
    record = emulator.contacts()[0]
    assert record["_id"] == cid
    assert record["loyalty_level"] == "gold"
    assert record["tags"] == ["b"]
    assert (record["email_optout"], record["sms_optout"]) == (1, 0)
    assert (
        post(
            api, first_name="D", last_name="L", user_id="U", tags="x", tag_action="swap"
        ).status_code
        == 400
    )


def test_get_customers_filters_and_pages(api: httpx.Client) -> None:
    for n in range(5):
        post(api, first_name=f"F{n}", last_name="L", user_id=f"U{n}", email=f"e{n % 2}@example.com")
    members = api.post(
        "/v2/ExternalApi/getCustomers", json={"app_id": DEMO_APP_ID, "email": "e1@example.com"}
    ).json()["members"]
    assert sorted(m["firstname"] for m in members) == ["F1", "F3"]
    assert set(members[0]) >= {"id", "firstname", "lastname", "email", "email_optout", "sms_optout"}
    # No phone stored: the key is left out, never null (the spec types it string).
    assert "phone" not in members[0]
    assert all(v is not None for m in members for v in m.values())
    page = api.post(
        "/v2/ExternalApi/getCustomers", json={"app_id": DEMO_APP_ID, "limit": 2, "offset": 4}
    ).json()
    assert len(page["members"]) == 1
    too_many = api.post("/v2/ExternalApi/getCustomers", json={"app_id": DEMO_APP_ID, "limit": 1001})
    assert too_many.status_code == 400


def test_optin_needs_phone_email_and_user_id(emulator: GleantapEmulator, api: httpx.Client) -> None:
    post(
        api,
        first_name="E",
        last_name="L",
        user_id="U",
        phone="+447911123456",
        email="e@example.com",
    )
    body = {"app_id": DEMO_APP_ID, "phone": "+447911123456", "email": "e@example.com"}
    assert api.post("/v2/ExternalApi/optin", json=body).status_code == 400
    assert api.post("/v2/ExternalApi/optin", json={**body, "user_id": "U"}).json() == {
        "status": "success"
    }
    assert emulator.contacts()[0]["sms_optin_pending"] is True


@pytest.mark.parametrize(
    "email",
    ["ann@bücher.de", "ánn@example.com", "ann@example"],
    ids=["unicode-domain", "unicode-local", "no-dot"],
)
def test_email_that_is_not_rfc_5322_ascii_is_400(api: httpx.Client, email: str) -> None:
    response = api.post(
        "/v2/ExternalApi/newContact",
        json={"app_id": DEMO_APP_ID, "first_name": "A", "last_name": "B", "email": email},
    )
    assert response.status_code == 400


def test_punycode_domain_is_accepted_and_kept(api: httpx.Client) -> None:
    post(api, first_name="A", last_name="B", email="ann@xn--bcher-kva.de")
    (member,) = api.post(
        "/v2/ExternalApi/getCustomers",
        json={"app_id": DEMO_APP_ID, "email": "ann@xn--bcher-kva.de"},
    ).json()["members"]
    assert member["email"] == "ann@xn--bcher-kva.de"
