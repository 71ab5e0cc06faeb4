"""The example app's tests: two tenants on two platforms, offline, with the plugin's fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from examples.app.members import Member, sync_members

CONFIG = Path(__file__).resolve().parents[1] / "app" / "tenants.toml"

MEMBERS = [
    Member("m-1", "Ada", "Lovelace", "ada@example.com", plan="gold", newsletter=True),
    Member("m-2", "Grace", "Hopper", "grace@example.com", plan="silver", newsletter=False),
    Member("m-3", "Alan", "Turing", "not-an-email", plan="gold", newsletter=True),
]


def test_eu_shop_members_reach_yespo(contactsync_client: Any, contactsync_emulator: Any) -> None:
    report = sync_members(contactsync_client(CONFIG, "shop-eu"), MEMBERS)
    assert report.written == 2
    assert list(report.problems) == ["m-3"]
    yespo = contactsync_emulator(CONFIG, "shop-eu").emulator
    stored = {c["externalCustomerId"]: c for c in yespo.contacts()}
    assert [g["name"] for g in stored["m-1"]["groups"]] == ["Members"]
    assert yespo.unsubscribed == {"grace@example.com"}


def test_au_venue_members_reach_ivvy_once(
    contactsync_client: Any, contactsync_emulator: Any
) -> None:
    client = contactsync_client(CONFIG, "venue-au")
    sync_members(client, MEMBERS)
    again = sync_members(client, MEMBERS)
    assert again.written == 2
    ivvy = contactsync_emulator(CONFIG, "venue-au").emulator
    stored = {c["externalId"]: c for c in ivvy.contacts()}
    assert sorted(stored) == ["m-1", "m-2"]
    assert (stored["m-1"]["status"], stored["m-2"]["status"]) == (1, 2)
    assert [g["groupId"] for g in stored["m-2"]["groups"]] == [10]


def test_both_tenants_replay_their_cassettes(contactsync_cassette: Any) -> None:
    eu = sync_members(contactsync_cassette(CONFIG, "shop-eu", "shop_eu_members"), MEMBERS[:2])
    au = sync_members(contactsync_cassette(CONFIG, "venue-au", "venue_au_members"), MEMBERS[:2])
    assert (eu.written, au.written) == (2, 2)
    assert eu.problems == au.problems == {}
