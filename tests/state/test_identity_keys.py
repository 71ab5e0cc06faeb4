"""The keys a state store records remote ids under never merge two addresses a platform
could hold as two (``straße@`` and ``strasse@``; ``Ann@`` and ``ann@``), end to end
against the emulators with a store, on every provider where it applies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contactsync import Client, Contact, Status
from contactsync.provider import identity_keys, record_keys
from contactsync.testing import EmulatorApp
from tests.reliability.scenarios import SCENARIOS, Scenario

# Gleantap takes ASCII local parts only (format: email): the ß address is refused there.
WHERE = [s for s in SCENARIOS if s.name != "gleantap"]


def _run(
    scenario: Scenario, app: EmulatorApp, url: str, records: list[dict[str, Any]]
) -> list[Any]:
    with Client(scenario.config(), "r", emulator=app, sleep=lambda s: None, state=url) as client:
        return sorted(client.upsert_many(records), key=lambda o: o.index)


def _anna(email: str, loyalty: str) -> dict[str, Any]:
    return {
        "first_name": "Anna",
        "last_name": "Smith",
        "email": email,
        "custom_fields": {"loyalty": loyalty},
    }


def _held(scenario: Scenario, app: EmulatorApp) -> list[tuple[Any, ...]]:
    # (email, loyalty) of every record, whatever the platform's shape.
    return sorted((view[3], view[5]) for view in map(scenario.view, app.emulator.contacts()))


@pytest.mark.parametrize("scenario", WHERE, ids=[s.name for s in WHERE])
def test_sharp_s_and_ss_stay_two_people_across_runs(scenario: Scenario, url: str) -> None:
    app = EmulatorApp(scenario.emulator())
    records = [_anna("straße@example.com", "a1"), _anna("strasse@example.com", "b1")]
    first = _run(scenario, app, url, records)
    assert all(o.ok for o in first), first
    assert first[0].remote_id != first[1].remote_id
    assert _held(scenario, app) == [("strasse@example.com", "b1"), ("straße@example.com", "a1")]
    changed = copy.deepcopy(records)
    changed[0]["custom_fields"]["loyalty"] = "a2"
    changed[1]["custom_fields"]["loyalty"] = "b2"
    second = _run(scenario, app, url, changed)
    assert all(o.ok for o in second), second
    # Each written by its own id: neither took the other's record.
    assert [o.remote_id for o in second] == [o.remote_id for o in first]
    assert _held(scenario, app) == [("strasse@example.com", "b2"), ("straße@example.com", "a2")]
    third = _run(scenario, app, url, changed)
    assert {o.status for o in third} == {Status.UNCHANGED}


def _contact(email: str, first_name: str = "Anna") -> Contact:
    return Contact(first_name=first_name, last_name="Smith", email=email)


SPECS = ("email", "first_name+last_name+email")


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("straße@example.com", "strasse@example.com"),
        ("Ann@example.com", "ann@example.com"),
    ],
)
def test_record_keys_keep_apart_what_identity_keys_merge(one: str, two: str) -> None:
    a, b = _contact(one), _contact(two)
    assert identity_keys(a, SPECS) == identity_keys(b, SPECS)  # coarse: wait for each other
    assert set(record_keys(a, SPECS)).isdisjoint(record_keys(b, SPECS))


def test_record_keys_do_not_fold_compatibility_characters() -> None:
    # NFKC would make fullwidth A, N, N plain ANN: two addresses to a platform that
    # compares code points.
    a, b = _contact("\uff21\uff2e\uff2e@example.com"), _contact("ANN@example.com")
    assert set(record_keys(a, SPECS)).isdisjoint(record_keys(b, SPECS))


def test_record_keys_lower_and_idna_encode_the_domain() -> None:
    unicode, encoded = _contact("Ann@Bücher.DE"), _contact("Ann@XN--BCHER-KVA.de")
    assert record_keys(unicode, ("email",)) == ("email=Ann@xn--bcher-kva.de",)
    assert record_keys(encoded, ("email",)) == ("email=Ann@xn--bcher-kva.de",)
    # IDNA 2008: ß stays ß in a domain, so straße.de and strasse.de stay two.
    assert record_keys(_contact("a@straße.de"), ("email",)) == ("email=a@xn--strae-oqa.de",)
    assert identity_keys(unicode, ("email",)) == ("email=ann@xn--bcher-kva.de",)


def test_record_keys_keep_a_canonically_equal_local_part_one() -> None:
    # NFC and NFD spell one address: email-validator normalizes it to NFC on input.
    composed, decomposed = _contact("\u00e9lise@example.com"), _contact("e\u0301lise@example.com")
    assert record_keys(composed, SPECS) == record_keys(decomposed, SPECS)
