"""The issue's acceptance runs: CLI upserts against ``contactsync emulate ivvy``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest
from contactsync_ivvy import IvvyAuth

from contactsync import Secret
from tests.acceptance import EXAMPLES, cli_upsert, emulate, generated, report, stored

CONFIG = """
[tenants.acc]
provider = "ivvy"
default_phone_region = "GB"
on_unsupported = "warn"
[tenants.acc.credentials]
api_key = "acc-key-1"
api_secret = "acc-secret"
[tenants.acc.custom_fields]
loyalty_level = 33443
[tenants.acc.groups]
newsletter = 10
events = 11
staff = 12
[tenants.acc.http]
max_retries = 15
backoff_base = 0.02
backoff_max = 0.1
concurrency = 16
"""


def test_examples_twice_create_nothing_and_keep_outside_memberships(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    contacts = EXAMPLES / "contacts.jsonl"
    with emulate("ivvy", "--config", str(config), "--tenant", "acc") as url:
        assert cli_upsert(url, config, contacts, tmp_path / "r1.json") == 2  # 2 invalid inputs
        first = report(tmp_path / "r1.json")
        ada = next(o for o in first["outcomes"] if o["external_id"] == "cus-1001")
        # A membership made outside contactsync, in a group the input never names.
        with httpx.Client(base_url=url, auth=IvvyAuth("acc-key-1", Secret("acc-secret"))) as signed:
            added = signed.post("/api/1.0/contact?action=addContactsToSubscriptionGroup",
                                json={"contacts": [int(ada["remote_id"])], "group": 12})  # fmt: skip
        assert added.json() == [{"contactId": int(ada["remote_id"]), "status": True}]
        assert cli_upsert(url, config, contacts, tmp_path / "r2.json") == 2
        contacts_stored = stored(url)
    second = report(tmp_path / "r2.json")
    # Created with updateIfExists: iVvy's answer does not say whether it matched one.
    assert first["summary"]["written"] == 5
    assert first["summary"]["created"] == second["summary"]["created"] == 0
    assert second["summary"]["updated"] == 5
    assert first["summary"]["failed"] == second["summary"]["failed"] == 0
    counts = Counter(c["externalId"] for c in contacts_stored)
    assert all(n == 1 for n in counts.values())
    assert len(contacts_stored) == 5
    groups = {c["externalId"]: sorted(g["groupId"] for g in c["groups"]) for c in contacts_stored}
    assert groups["cus-1001"] == [10, 12]  # newsletter added twice, staff kept
    assert groups["cus-1002"] == [10, 11]
    assert groups["cus-1004"] == []  # removed from events, which it was never in


@pytest.mark.timeout(300)
def test_five_thousand_contacts_with_faults_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    contacts = tmp_path / "gen.jsonl"
    rows = generated(5000, contacts, sms_status="subscribed", groups={"add": ["newsletter"]})
    with emulate(
        "ivvy", "--config", str(config), "--tenant", "acc", "--fail-rate", "0.3", "--seed", "3"
    ) as url:
        code = cli_upsert(url, config, contacts, tmp_path / "r.json")
        contacts_stored = stored(url)
    data = report(tmp_path / "r.json")
    assert sorted(o["index"] for o in data["outcomes"]) == list(range(5000))
    assert code == 0, data["summary"]
    by_ext = {c["externalId"]: c for c in contacts_stored}
    assert len(contacts_stored) == len(by_ext) == 5000
    for row in rows:
        got = by_ext[row["external_id"]]
        assert (got["firstName"], got["lastName"], got["email"], got["phone"]) == (
            row["first_name"],
            row["last_name"],
            row["email"],
            row["phone"],
        )
        assert got["smsStatus"] == 1
        assert [g["groupId"] for g in got["groups"]] == [10]
