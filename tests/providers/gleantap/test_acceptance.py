"""The issue's acceptance runs: CLI upserts against ``contactsync emulate gleantap``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.acceptance import EXAMPLES, cli_upsert, emulate, generated, report, stored

CONFIG = """
[tenants.acc]
provider = "gleantap"
default_phone_region = "GB"
on_unsupported = "warn"
[tenants.acc.credentials]
api_key = "acc-key-1"
secret_key = "acc-secret"
[tenants.acc.custom_fields]
loyalty_level = "loyalty_level"
[tenants.acc.options]
app_id = "acc-app"
[tenants.acc.http]
max_retries = 15
backoff_base = 0.02
backoff_max = 0.1
concurrency = 16
"""


def test_examples_twice_then_renamed_create_nothing(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    examples = EXAMPLES / "contacts.jsonl"
    renamed = tmp_path / "renamed.jsonl"
    renamed.write_text("".join(
        json.dumps({**json.loads(line), "first_name": "Renamed"}) + "\n"
        for line in examples.read_text().splitlines() if line.strip()
    ))  # fmt: skip
    with emulate("gleantap", "--config", str(config), "--tenant", "acc") as url:
        assert cli_upsert(url, config, examples, tmp_path / "r1.json") == 2  # 2 invalid inputs
        after_first = len(stored(url))
        assert cli_upsert(url, config, examples, tmp_path / "r2.json") == 2
        assert cli_upsert(url, config, renamed, tmp_path / "r3.json") == 2
        contacts_stored = stored(url)
    assert after_first == 5
    assert len(contacts_stored) == 5
    assert Counter(c["user_id"] for c in contacts_stored) == Counter(
        o["external_id"]
        for o in report(tmp_path / "r1.json")["outcomes"]
        if o["status"] != "rejected"
    )
    assert {c["first_name"] for c in contacts_stored} == {"Renamed"}
    for name in ("r1.json", "r2.json", "r3.json"):
        assert report(tmp_path / name)["summary"]["failed"] == 0


@pytest.mark.timeout(300)
def test_five_thousand_contacts_with_faults_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    contacts = tmp_path / "gen.jsonl"
    rows = generated(5000, contacts, email_status="subscribed", tags=["member"])
    with emulate(
        "gleantap", "--config", str(config), "--tenant", "acc", "--fail-rate", "0.3", "--seed", "9"
    ) as url:
        code = cli_upsert(url, config, contacts, tmp_path / "r.json")
        contacts_stored = stored(url)
    data = report(tmp_path / "r.json")
    assert sorted(o["index"] for o in data["outcomes"]) == list(range(5000))
    assert code == 0, data["summary"]
    by_user = {c["user_id"]: c for c in contacts_stored}
    assert len(contacts_stored) == len(by_user) == 5000
    for row in rows:
        got = by_user[row["external_id"]]
        assert (got["first_name"], got["last_name"], got["email"], got["phone"]) == (
            row["first_name"],
            row["last_name"],
            row["email"],
            row["phone"],
        )
        assert got["email_optout"] == 0
        assert got["tags"] == ["member"]
