"""The identity map (the platform's id kept in the state store, used instead of a
look-up, repaired when stale) and identity changes (a known external id arriving with
a new email or phone) on every provider."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contactsync import Client, Status
from contactsync._state import open_store
from contactsync.testing import EmulatorApp
from tests.reliability.scenarios import SCENARIOS, Scenario, expected, people

IDS = [s.name for s in SCENARIOS]
IVVY = next(s for s in SCENARIOS if s.name == "ivvy")
GLEANTAP = next(s for s in SCENARIOS if s.name == "gleantap")


def _run(
    scenario: Scenario, app: EmulatorApp, url: str, records: list[dict[str, Any]]
) -> tuple[list[Any], int]:
    with Client(scenario.config(), "r", emulator=app, sleep=lambda s: None, state=url) as client:
        run = client.upsert_many(records)
        return sorted(run, key=lambda o: o.index), run.summary.requests


def _changed(records: list[dict[str, Any]], every: int, to: str = "Moved") -> list[dict[str, Any]]:
    changed = copy.deepcopy(records)
    for n in range(0, len(changed), every):
        changed[n]["last_name"] = f"{to}{n}"
    return changed


def test_ivvy_writes_a_known_contact_by_its_id_in_one_request(url: str) -> None:
    app = EmulatorApp(IVVY.emulator())
    records = people(100)
    first, sent = _run(IVVY, app, url, records)
    # By external id, by name (contacts updateIfExists could land on), a write: the
    # map was empty.
    assert sent == 300
    changed = _changed(records, 10)
    second, sent = _run(IVVY, app, url, changed)
    assert sent == 10
    assert [o.requests for o in second if o.status is Status.UPDATED] == [1] * 10
    assert [o.remote_id for o in second] == [o.remote_id for o in first]
    assert sorted(IVVY.view(c) for c in app.emulator.contacts()) == sorted(map(expected, changed))


def test_ivvy_repairs_an_id_deleted_on_the_platform(url: str) -> None:
    emulator = IVVY.emulator()
    app = EmulatorApp(emulator)
    records = people(6)
    first, _ = _run(IVVY, app, url, records)
    gone = int(first[2].remote_id)
    emulator.delete(gone)  # type: ignore[attr-defined]
    changed = _changed(records, 2)  # 0, 2 and 4 change; 2 was deleted on iVvy
    second, _ = _run(IVVY, app, url, changed)
    # Recreated with updateIfExists (the default): written, as iVvy's answer does not say.
    assert [o.status for o in second[:5:2]] == [Status.UPDATED, Status.WRITTEN, Status.UPDATED]
    assert second[2].remote_id != str(gone)
    # The refused write, the look-ups (by external id, by name), the create.
    assert second[2].requests == 4
    assert sorted(IVVY.view(c) for c in emulator.contacts()) == sorted(map(expected, changed))
    with open_store(url, read_only=True) as store:
        held = store.get_many("r", ["external_id=r2"])["external_id=r2"]
    assert held.remote_id == second[2].remote_id  # the map holds the new id
    third, sent = _run(IVVY, app, url, _changed(changed, 1, to="Again"))
    assert sent == 6
    assert all(o.status is Status.UPDATED for o in third)


def test_gleantap_skips_its_look_up_for_a_known_email_and_first_name(url: str) -> None:
    app = EmulatorApp(GLEANTAP.emulator())
    records = [{k: v for k, v in r.items() if k != "external_id"} for r in people(20)]
    _, sent = _run(GLEANTAP, app, url, records)
    assert sent == 40  # getCustomers, then newContact
    changed = _changed(records, 5)
    second, sent = _run(GLEANTAP, app, url, changed)
    assert sent == 4
    assert [o.requests for o in second if o.status is Status.UPDATED] == [1] * 4
    # A first name the store has not seen with this email is looked up again: it
    # could be someone else sharing the address.
    renamed = copy.deepcopy(changed)
    renamed[1]["first_name"] = "Other"
    third, sent = _run(GLEANTAP, app, url, renamed)
    assert sent == 2
    assert any("another first name" in w for w in third[1].warnings)
    stored = sorted((c["email"], c["first_name"]) for c in app.emulator.contacts())
    want = [*((r["email"], r["first_name"]) for r in records), ("r1@example.com", "Other")]
    assert stored == sorted(want)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
@pytest.mark.parametrize("field", ["email", "phone"])
def test_a_known_external_id_moves_to_its_new_email_or_phone(
    scenario: Scenario, field: str, url: str
) -> None:
    app = EmulatorApp(scenario.emulator())
    records = people(12)
    _run(scenario, app, url, records)
    moved = copy.deepcopy(records)
    for n in (3, 7):
        if field == "email":
            moved[n]["email"] = f"moved{n}@example.org"
        else:
            moved[n]["phone"] = f"+4479222{n:05d}"
    outcomes, _ = _run(scenario, app, url, moved)
    assert all(o.ok for o in outcomes)
    assert [o.index for o in outcomes if o.status is not Status.UNCHANGED] == [3, 7]
    stored = sorted(scenario.view(c) for c in app.emulator.contacts())
    assert stored == sorted(map(expected, moved))  # one contact each, the new value


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_external_ids_differing_only_in_case_are_two_people(url: str, scenario: Scenario) -> None:
    # No platform document says external ids ignore case, so "abc" and "ABC" are two
    # people: the store must not hand one the other's platform id (on iVvy that wrote
    # Bob over Alice's record) nor call the second one unchanged.
    app = EmulatorApp(scenario.emulator())
    alice = {**people(1)[0], "external_id": "abc", "first_name": "Alice"}
    bob = {**people(2)[1], "external_id": "ABC", "first_name": "Bob"}
    _run(scenario, app, url, [alice])
    second, sent = _run(scenario, app, url, [bob])
    assert second[0].ok
    assert sent >= 1
    held = sorted(scenario.view(c) for c in app.emulator.contacts())
    assert held == sorted([expected(alice), expected(bob)])
    third, sent = _run(scenario, app, url, [alice, bob])
    assert sent == 0
    assert {o.status for o in third} == {Status.UNCHANGED}
