"""Sync modes on a mixed input (some contacts exist, some do not), with a state store
that knows some of them and a platform that knows more; and the refusal of a mode a
provider cannot honour."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contactsync import Client, ConfigError, SkipReason, Status
from contactsync.testing import EmulatorApp
from tests.reliability.scenarios import SCENARIOS, Scenario, expected, people

WITH_MODES = [s for s in SCENARIOS if s.name in ("ivvy", "gleantap")]
IDS = [s.name for s in WITH_MODES]


def _run(
    scenario: Scenario,
    app: EmulatorApp,
    records: list[dict[str, Any]],
    *,
    state: str | None = None,
    mode: str | None = None,
) -> tuple[list[Any], int]:
    config = scenario.config()
    if mode is not None:
        config["tenants"]["r"]["sync_mode"] = mode
    with Client(config, "r", emulator=app, sleep=lambda s: None, state=state) as client:
        run = client.upsert_many(records)
        return sorted(run, key=lambda o: o.index), run.summary.requests


def _stored(scenario: Scenario, app: EmulatorApp) -> list[tuple[Any, ...]]:
    return sorted(scenario.view(c) for c in app.emulator.contacts())


def _mixed(app: EmulatorApp, scenario: Scenario, url: str) -> list[dict[str, Any]]:
    """Contacts 0-9 exist on the platform: 0-4 written through the store (it knows
    them), 5-9 without it (only the platform knows them). 10-19 exist nowhere. Every
    one of them comes back changed."""
    old = people(10)
    _run(scenario, app, old[:5], state=url)
    _run(scenario, app, old[5:])
    changed = people(20)
    for record in changed:
        record["last_name"] += "-new"
    return changed


@pytest.mark.parametrize("scenario", WITH_MODES, ids=IDS)
def test_create_only_never_touches_an_existing_contact(scenario: Scenario, url: str) -> None:
    app = EmulatorApp(scenario.emulator())
    records = _mixed(app, scenario, url)
    outcomes, _ = _run(scenario, app, records, state=url, mode="create_only")
    by_status = {o.index: (o.status, o.reason) for o in outcomes}
    assert all(by_status[n] == (Status.SKIPPED, SkipReason.EXISTS) for n in range(10))
    new = (Status.CREATED, Status.UPDATED, Status.WRITTEN)
    assert all(by_status[n][0] in new for n in range(10, 20))
    assert sum(o.requests for o in outcomes[:5]) == 0  # the store knew them
    assert all(o.requests > 0 for o in outcomes[5:10])  # the platform was asked
    assert all(o.ok for o in outcomes)
    want = [expected(r) for r in people(10)] + [expected(r) for r in records[10:]]
    assert _stored(scenario, app) == sorted(want)


@pytest.mark.parametrize("scenario", WITH_MODES, ids=IDS)
def test_update_only_never_creates_a_contact(scenario: Scenario, url: str) -> None:
    app = EmulatorApp(scenario.emulator())
    records = _mixed(app, scenario, url)
    outcomes, _ = _run(scenario, app, records, state=url, mode="update_only")
    by_status = {o.index: (o.status, o.reason) for o in outcomes}
    assert all(by_status[n] == (Status.UPDATED, None) for n in range(10))
    assert all(by_status[n] == (Status.SKIPPED, SkipReason.NOT_FOUND) for n in range(10, 20))
    assert _stored(scenario, app) == sorted(expected(r) for r in records[:10])
    # Skipped contacts are a success, and come back next run (they were not written).
    again, _ = _run(scenario, app, copy.deepcopy(records), state=url, mode="update_only")
    assert [o.status for o in again[:10]] == [Status.UNCHANGED] * 10
    assert [o.reason for o in again[10:]] == [SkipReason.NOT_FOUND] * 10


@pytest.mark.parametrize("scenario", WITH_MODES, ids=IDS)
def test_modes_without_a_state_store_ask_the_platform(scenario: Scenario) -> None:
    app = EmulatorApp(scenario.emulator())
    _run(scenario, app, people(5))
    records = people(8)
    for record in records:
        record["last_name"] += "-new"
    created, _ = _run(scenario, app, records, mode="create_only")
    assert [o.reason for o in created] == [SkipReason.EXISTS] * 5 + [None] * 3
    updated, _ = _run(scenario, app, people(10), mode="update_only")
    assert [o.status for o in updated[:8]] == [Status.UPDATED] * 8
    assert [o.reason for o in updated[8:]] == [SkipReason.NOT_FOUND] * 2
    assert len(app.emulator.contacts()) == 8


def test_a_mode_the_provider_cannot_honour_is_refused() -> None:
    for scenario in SCENARIOS[:2]:  # Yespo, bulk and real time
        config = scenario.config()
        config["tenants"]["r"]["sync_mode"] = "create_only"
        with pytest.raises(ConfigError) as caught:
            Client(config, "r", emulator=EmulatorApp(scenario.emulator()))
        assert caught.value.path == "tenants.r.sync_mode"
        assert "cannot tell cheaply" in str(caught.value)
        with pytest.raises(ConfigError, match=r"tenants\.r\.sync_mode"):
            Client(
                scenario.config(),
                "r",
                emulator=EmulatorApp(scenario.emulator()),
                sync_mode="update_only",
            )


def test_an_unknown_mode_names_the_field() -> None:
    config = WITH_MODES[0].config()
    config["tenants"]["r"]["sync_mode"] = "insert"
    with pytest.raises(ConfigError, match="sync_mode"):
        Client(config, "r", emulator=EmulatorApp(WITH_MODES[0].emulator()))


@pytest.mark.parametrize("scenario", WITH_MODES, ids=IDS)
def test_create_only_with_one_new_person_twice_creates_one_contact(
    scenario: Scenario, url: str
) -> None:
    app = EmulatorApp(scenario.emulator())
    records = people(40)
    # r0 again right after itself, and r5 again far apart; concurrency 8.
    twice = [records[0], {**records[0], "last_name": "Second"}, *records[1:]]
    twice.append({**records[5], "last_name": "Later"})
    config = scenario.config(concurrency=8)
    config["tenants"]["r"]["sync_mode"] = "create_only"
    with Client(config, "r", emulator=app, sleep=lambda s: None, state=url) as client:
        outcomes = sorted(client.upsert_many(twice), key=lambda o: o.index)
    assert all(o.ok for o in outcomes)
    assert (outcomes[1].status, outcomes[1].reason) == (Status.SKIPPED, SkipReason.EXISTS)
    assert (outcomes[-1].status, outcomes[-1].reason) == (Status.SKIPPED, SkipReason.EXISTS)
    assert sum(o.status is Status.SKIPPED for o in outcomes) == 2
    assert _stored(scenario, app) == sorted(map(expected, records))  # the first rows' data


def test_update_only_never_recreates_a_contact_deleted_since(url: str) -> None:
    scenario = next(s for s in WITH_MODES if s.name == "ivvy")
    emulator = scenario.emulator()
    app = EmulatorApp(emulator)
    first, _ = _run(scenario, app, people(3), state=url)
    emulator.delete(int(first[1].remote_id))  # type: ignore[attr-defined]
    changed = people(3)
    for record in changed:
        record["last_name"] += "-new"
    outcomes, _ = _run(scenario, app, changed, state=url, mode="update_only")
    assert [(o.status, o.reason) for o in outcomes] == [
        (Status.UPDATED, None),
        (Status.SKIPPED, SkipReason.NOT_FOUND),  # the stored id was refused, then not found
        (Status.UPDATED, None),
    ]
    assert outcomes[1].requests == 2
    assert _stored(scenario, app) == sorted(expected(r) for r in (changed[0], changed[2]))
