"""The issue's acceptance runs: CLI upserts against ``contactsync emulate yespo``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.acceptance import EXAMPLES, cli_upsert, emulate, generated, report, stored
from tests.providers.yespo.conftest import channel

CONFIG = """
[tenants.acc]
provider = "yespo"
default_phone_region = "GB"
on_unsupported = "warn"
[tenants.acc.credentials]
api_key = "yespo-demo-key"
[tenants.acc.custom_fields]
loyalty_level = 1001
[tenants.acc.groups]
newsletter = "Newsletter"
events = "Events"
[tenants.acc.options]
poll_interval = 0.2
[tenants.acc.http]
max_retries = 15
backoff_base = 0.05
backoff_max = 0.5
"""


def test_examples_twice_store_each_valid_contact_once(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    contacts = EXAMPLES / "contacts.jsonl"
    # Started for the tenant: it accepts the tenant's key and has its segments.
    with emulate("yespo", "--config", str(config), "--tenant", "acc") as url:
        assert cli_upsert(url, config, contacts, tmp_path / "r1.json") == 2  # 2 invalid inputs
        assert cli_upsert(url, config, contacts, tmp_path / "r2.json") == 2
        contacts_stored = stored(url)
    first, second = report(tmp_path / "r1.json"), report(tmp_path / "r2.json")
    assert first["summary"]["failed"] == second["summary"]["failed"] == 0
    assert second["summary"]["created"] == 0
    assert first["summary"]["rejected"] == second["summary"]["rejected"] == 2
    valid = [o["external_id"] for o in first["outcomes"] if o["status"] != "rejected"]
    counts = Counter(c.get("externalCustomerId") for c in contacts_stored)
    assert {ext: counts[ext] for ext in valid} == dict.fromkeys(valid, 1)
    assert len(contacts_stored) == len(valid)
    members = {c["externalCustomerId"]: [g["name"] for g in c["groups"]] for c in contacts_stored}
    assert members["cus-1001"] == ["Newsletter"]
    assert members["cus-1002"] == ["Newsletter", "Events"]


@pytest.mark.timeout(300)
def test_five_thousand_contacts_with_faults_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    contacts = tmp_path / "gen.jsonl"
    rows = generated(5000, contacts, custom_fields={"loyalty_level": "gold"}, language="en")
    with emulate("yespo", "--fail-rate", "0.3", "--seed", "42") as url:
        code = cli_upsert(url, config, contacts, tmp_path / "r.json")
        contacts_stored = stored(url)
    data = report(tmp_path / "r.json")
    assert sorted(o["index"] for o in data["outcomes"]) == list(range(5000))
    assert sum(v for k, v in data["summary"].items() if k != "requests") == 5000
    assert code == 0, data["summary"]
    by_ext = {c["externalCustomerId"]: c for c in contacts_stored}
    assert len(contacts_stored) == len(by_ext) == 5000
    for row in rows:
        got = by_ext[row["external_id"]]
        assert (got["firstName"], got["lastName"], got["languageCode"]) == (
            row["first_name"],
            row["last_name"],
            "en",
        )
        assert channel(got, "email") == row["email"]
        assert channel(got, "sms") == row["phone"]
        assert got["fields"] == [{"id": 1001, "value": "gold"}]
