"""Every fault the emulators inject, per provider: every contact accounted for, none
duplicated, no field lost."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from contactsync import Client, Status
from contactsync._fault_kinds import KINDS, SLOW
from contactsync.testing import EmulatorApp, Faults, serve_in_thread
from tests.reliability.scenarios import SCENARIOS, Scenario, expected, people

IDS = [s.name for s in SCENARIOS]


def check(
    scenario: Scenario, app: EmulatorApp, records: list[dict[str, Any]], outcomes: list[Any]
) -> None:
    assert sorted(o.index for o in outcomes) == list(range(len(records)))
    bad = [o for o in outcomes if not o.ok]
    assert bad == [], bad[:3]
    stored = [scenario.view(c) for c in app.emulator.contacts()]
    counts = Counter(view[0] for view in stored)
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1]
    assert sorted(stored) == sorted(expected(r) for r in records)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_each_fault_kind(scenario: Scenario, kind: str) -> None:
    app = EmulatorApp(scenario.emulator(), Faults(rate=0.5, seed=11, kinds=(kind,)))
    records = people(60)
    with Client(scenario.config(), "r", emulator=app, sleep=lambda s: None) as client:
        outcomes = list(client.upsert_many(records))
    assert app.faults_injected[kind] > 0
    check(scenario, app, records, outcomes)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_every_fault_kind_mixed_twice(scenario: Scenario) -> None:
    app = EmulatorApp(scenario.emulator(), Faults(rate=0.4, seed=3))
    records = people(80)
    with Client(scenario.config(), "r", emulator=app, sleep=lambda s: None) as client:
        list(client.upsert_many(records))
        again = list(client.upsert_many(records))
    assert not any(o.status is Status.CREATED for o in again)
    check(scenario, app, records, again)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_slow_responses_past_the_timeout(scenario: Scenario) -> None:
    # Over loopback, so the client's timeout is real: the request is applied, the
    # answer comes after the client gave up, and the resend must not duplicate.
    app = EmulatorApp(
        scenario.emulator(), Faults(rate=0.5, seed=1, kinds=(SLOW,), slow_seconds=0.4)
    )
    server, url = serve_in_thread(app)
    records = people(12)
    try:
        config = scenario.config(timeout=0.15)
        config["tenants"]["r"]["base_url"] = url
        with Client(config, "r", sleep=lambda s: None) as client:
            outcomes = list(client.upsert_many(records))
    finally:
        server.shutdown()
        server.server_close()
    assert app.faults_injected[SLOW] > 0
    check(scenario, app, records, outcomes)


def test_partial_bulk_failure_fails_exactly_the_refused_contacts() -> None:
    scenario = SCENARIOS[0]
    app = EmulatorApp(scenario.emulator(), Faults(rate=0.3, seed=9))
    records = people(40)
    for n in (3, 17, 29):
        records[n] = {**records[n], "first_name": "1234"}  # Yespo refuses names made of digits
    with Client(scenario.config(), "r", emulator=app, sleep=lambda s: None) as client:
        outcomes = sorted(client.upsert_many(records), key=lambda o: o.index)
    assert [o.index for o in outcomes if o.status is Status.FAILED] == [3, 17, 29]
    assert all(o.ok for o in outcomes if o.index not in (3, 17, 29))
    stored = sorted(scenario.view(c) for c in app.emulator.contacts())
    assert stored == sorted(expected(r) for n, r in enumerate(records) if n not in (3, 17, 29))
