"""Within one run, a person's later rows use the platform id their first row obtained,
whatever the platform's own matching would do (iVvy with ``update_if_exists = false``
creates a contact for every write without an id), with and without a state store."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from contactsync import Client, Status
from contactsync.testing import EmulatorApp
from tests.reliability.scenarios import SCENARIOS, Scenario

IVVY = next(s for s in SCENARIOS if s.name == "ivvy")


def _config(scenario: Scenario, **options: Any) -> dict[str, Any]:
    config = scenario.config()
    tenant = config["tenants"]["r"]
    tenant["options"] = {**tenant.get("options", {}), **options}
    return config


def _rows(people: int, each: int) -> list[dict[str, Any]]:
    """``each`` rows per person, no external id, shuffled (seeded); loyalty says which
    row of its person a row is."""
    rows = [
        {
            "first_name": f"First{p}",
            "last_name": f"Last{p}",
            "email": f"p{p}@example.com",
            "custom_fields": {"loyalty": f"row{n}"},
        }
        for p in range(people)
        for n in range(each)
    ]
    random.Random(23).shuffle(rows)
    return rows


def _last_rows(rows: list[dict[str, Any]]) -> dict[str, str]:
    last = {}
    for row in rows:
        last[row["email"]] = row["custom_fields"]["loyalty"]
    return last


@pytest.mark.parametrize("with_store", [False, True], ids=["stateless", "store"])
def test_ivvy_without_update_if_exists_creates_each_person_once(
    with_store: bool, tmp_path: Any
) -> None:
    app = EmulatorApp(IVVY.emulator())
    rows = _rows(300, 4)
    state = f"sqlite:///{tmp_path / 'state.db'}" if with_store else None
    config = _config(IVVY, update_if_exists=False)
    with Client(config, "r", emulator=app, sleep=lambda s: None, state=state) as client:
        outcomes = list(client.upsert_many(rows))
    statuses = Counter(o.status for o in outcomes)
    assert statuses[Status.CREATED] == 300, statuses
    assert statuses[Status.UPDATED] == 900, statuses
    held = app.emulator.contacts()
    assert len(held) == 300
    want = _last_rows(rows)
    got = {c["email"]: {f["fieldId"]: f["value"] for f in c["customFields"]}[501] for c in held}
    assert got == want  # each holds its last row's data
    ids_by_person: dict[str, set[str | None]] = {}
    for outcome, row in zip(sorted(outcomes, key=lambda o: o.index), rows, strict=True):
        ids_by_person.setdefault(row["email"], set()).add(outcome.remote_id)
    assert all(len(ids) == 1 for ids in ids_by_person.values())


def test_a_row_after_one_the_store_calls_unchanged_writes_by_its_id(tmp_path: Any) -> None:
    # Run 1 writes A; run 2 has A again (unchanged: never sent) and then A': A' is
    # written by A's stored id, not created a second time.
    app = EmulatorApp(IVVY.emulator())
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = _config(IVVY, update_if_exists=False)
    first = _rows(1, 1)
    second = [*first, {**first[0], "custom_fields": {"loyalty": "later"}}]
    for rows in (first, second):
        with Client(config, "r", emulator=app, sleep=lambda s: None, state=state) as client:
            outcomes = sorted(client.upsert_many(rows), key=lambda o: o.index)
    assert [o.status for o in outcomes] == [Status.UNCHANGED, Status.UPDATED]
    assert outcomes[0].remote_id == outcomes[1].remote_id
    (held,) = app.emulator.contacts()
    assert held["customFields"][0]["value"] == "later"
