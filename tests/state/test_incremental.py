"""Incremental runs through the engine: unchanged contacts cost no request, changed
ones and failed ones are sent, a changed mapping resends all (SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx
import pytest

from contactsync import Client, Outcome, Status, _incremental
from contactsync._pipeline import Pipeline
from contactsync._state import StateRecord, open_store
from contactsync.testing import EmulatorApp
from tests.reliability.scenarios import SCENARIOS, Scenario, expected, people

IDS = [s.name for s in SCENARIOS]


def _run(
    scenario: Scenario, app: EmulatorApp, url: str, records: Iterable[dict[str, Any]], **kw: Any
) -> tuple[list[Any], int]:
    full = kw.pop("full", False)
    config = kw.pop("config", None) or scenario.config()
    with Client(config, "r", emulator=app, sleep=lambda s: None, state=url) as client:
        run = client.upsert_many(records, full=full)
        outcomes = sorted(run, key=lambda o: o.index)
        return outcomes, run.summary.requests


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_a_second_identical_run_sends_nothing(scenario: Scenario, url: str) -> None:
    app = EmulatorApp(scenario.emulator())
    records = people(5000)
    first, sent = _run(scenario, app, url, records)
    assert all(o.ok for o in first)
    assert sent >= 5000 if scenario.name != "yespo-bulk" else sent > 0
    again, sent_again = _run(scenario, app, url, copy.deepcopy(records))
    assert sent_again == 0
    assert {o.status for o in again} == {Status.UNCHANGED}
    assert [o.index for o in again] == list(range(5000))

    changed = copy.deepcopy(records)
    for n in range(0, 5000, 500):  # 10 contacts change
        changed[n]["last_name"] = f"Moved{n}"
    third, _ = _run(scenario, app, url, changed)
    statuses = Counter(o.status for o in third)
    assert statuses[Status.UNCHANGED] == 4990
    written = [o.index for o in third if o.status is not Status.UNCHANGED]
    assert written == list(range(0, 5000, 500))
    stored = sorted(scenario.view(c) for c in app.emulator.contacts())
    assert stored == sorted(expected(r) for r in changed)


@pytest.mark.parametrize("scenario", SCENARIOS[1:], ids=IDS[1:])
def test_a_changed_mapping_or_full_resends_everything(scenario: Scenario, url: str) -> None:
    app = EmulatorApp(scenario.emulator())
    records = people(50)
    _run(scenario, app, url, records)
    _, full_sent = _run(scenario, app, url, records, full=True)
    assert full_sent >= 50
    config = scenario.config()
    config["tenants"]["r"]["on_unsupported"] = "warn"  # the mapping changed
    outcomes, sent = _run(scenario, app, url, records, config=config)
    assert sent >= 50
    assert all(o.requests > 0 for o in outcomes)  # every one went to the platform


@pytest.mark.parametrize("scenario", SCENARIOS[1:], ids=IDS[1:])
def test_failed_rows_are_resent_on_the_next_run_and_only_they(scenario: Scenario, url: str) -> None:
    app = EmulatorApp(scenario.emulator())
    records = people(30)
    refused = {records[n]["email"] for n in (4, 17)}

    def refuse(request: httpx.Request) -> httpx.Response:
        if any(email.encode() in request.content for email in refused):
            return httpx.Response(400, json={"error": "refused by the test"})
        return app(request)

    config = scenario.config()
    with Client(
        config, "r", transport=httpx.MockTransport(refuse), sleep=lambda s: None, state=url
    ) as client:
        first = sorted(client.upsert_many(records), key=lambda o: o.index)
    assert [o.index for o in first if not o.ok] == [4, 17]
    second, _ = _run(scenario, app, url, records)
    assert [o.index for o in second if o.status is not Status.UNCHANGED] == [4, 17]
    assert all(o.ok for o in second)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_a_row_confirmed_before_is_resent_after_an_earlier_row_of_that_person(
    scenario: Scenario, url: str
) -> None:
    # A run sent B (confirmed in the store). A later run gets A then B for the same
    # person: A changes what the platform holds, so B must be sent again, not judged
    # unchanged against the store (the platform would be left with A).
    app = EmulatorApp(scenario.emulator())
    (row,) = people(1)
    newer = {**row, "last_name": "Newer"}
    _run(scenario, app, url, [newer])
    # A one-shot iterator is not read ahead: both rows go, in input order (a list or a
    # file would have A skipped as superseded, see test_replay).
    outcomes, _ = _run(scenario, app, url, iter([row, copy.deepcopy(newer)]))
    assert outcomes[1].status is not Status.UNCHANGED
    stored = [scenario.view(c) for c in app.emulator.contacts()]
    if outcomes[1].ok:
        assert stored == [expected(newer)]
    else:
        # Yespo refuses a request repeated within a minute (409): B fails, retryable,
        # and says so; it is not reported written.
        assert outcomes[1].error is not None
        assert outcomes[1].error.retryable


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_new_raw_input_that_maps_the_same_is_learnt(
    scenario: Scenario, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Padding a name changes the raw record, not what the platform is sent: the second
    # run maps the row and finds it unchanged; the third settles it from the store's
    # raw hash alone, mapping nothing.
    app = EmulatorApp(scenario.emulator())
    records = people(20)
    _run(scenario, app, url, records)
    padded = copy.deepcopy(records)
    for record in padded[::2]:
        record["first_name"] = f"  {record['first_name']}  "
    mapped: list[int] = []
    prepare = Pipeline.prepare

    def counted(self: Pipeline, index: int, item: Any) -> Any:
        mapped.append(index)
        return prepare(self, index, item)

    monkeypatch.setattr(Pipeline, "prepare", counted)
    second, _ = _run(scenario, app, url, padded)  # (mapping may need the provider's setup)
    assert {o.status for o in second} == {Status.UNCHANGED}
    assert {o.requests for o in second} == {0}
    assert mapped == list(range(0, 20, 2))
    mapped.clear()
    third, sent = _run(scenario, app, url, copy.deepcopy(padded))
    assert (sent, mapped) == (0, [])
    assert {o.status for o in third} == {Status.UNCHANGED}
    # A row the store learnt is still sent once it really changes.
    moved = copy.deepcopy(padded)
    moved[0]["last_name"] = "Moved"
    fourth, sent = _run(scenario, app, url, moved)
    assert sent > 0
    assert [o.index for o in fourth if o.status is not Status.UNCHANGED] == [0]


class _Held(httpx.BaseTransport):
    """Sends to ``app`` from a worker thread, holding each request that carries
    ``marker`` until ``release`` is set (``held`` tells when one is waiting)."""

    def __init__(self, app: EmulatorApp, marker: bytes) -> None:
        self.app, self.marker = app, marker
        self.held, self.release = threading.Event(), threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if self.marker in request.content:
            self.held.set()
            assert self.release.wait(60), "the test never released the request"
        response = self.app(request)
        response.read()
        return response


def _in_flight_while_the_last_row_is_sent(
    scenario: Scenario, app: EmulatorApp, url: str, earlier: dict[str, Any], last: dict[str, Any]
) -> tuple[Outcome, StateRecord]:
    """The run's outcome for ``earlier``, and the store's record of that person read
    while ``last`` (holding ``Held-Row``) is being sent, every outcome written at once."""
    transport = _Held(app, b"Held-Row")
    key = f"external_id={earlier['external_id']}"
    with Client(scenario.config(), "r", transport=transport, state=url) as client:
        # A one-shot iterator: not read ahead, so both rows are sent, in input order.
        run = client.upsert_many(iter([earlier, last]))
        try:
            first = next(run)  # written to the store before it is handed out
            assert transport.held.wait(60)
            with open_store(url) as store:
                record = store.get_many("r", [key])[key]
        finally:
            transport.release.set()
        rest = list(run)
    assert [o.index for o in [first, *rest]] == [0, 1]
    return first, record


def _one_person_written(
    scenario: Scenario, url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[EmulatorApp, dict[str, Any]]:
    """A fresh emulator holding one person, written by a first run whose outcomes are
    flushed to the store one at a time (as a long run's are, mid-run)."""
    monkeypatch.setattr(_incremental, "FLUSH_EVERY", 1)
    app = EmulatorApp(scenario.emulator())
    (row,) = people(1)
    _run(scenario, app, url, [row])
    return app, row


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_a_learnt_raw_input_leaves_a_later_row_in_flight(
    scenario: Scenario, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The person's first row maps as the store holds (a padded name, a new raw hash to
    # learn); their last row changes them. Learning that hash must not clear the marker
    # the last row set: were the run killed while the platform applies that row, the
    # next run would call the first row unchanged from its raw hash alone.
    app, row = _one_person_written(scenario, url, monkeypatch)
    padded = {**row, "first_name": f"  {row['first_name']}  "}
    held = {**row, "last_name": "Held-Row"}
    first, record = _in_flight_while_the_last_row_is_sent(scenario, app, url, padded, held)
    assert first.status is Status.UNCHANGED
    assert record.in_flight


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_an_earlier_rows_outcome_leaves_a_later_row_in_flight(
    scenario: Scenario, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two rows of one person that both change them: the first one's outcome, written
    # while the second is sent, must leave the second's marker (were the run killed
    # while the platform applies it, the next run would call the first row unchanged).
    app, row = _one_person_written(scenario, url, monkeypatch)
    second = {**row, "last_name": "Second"}
    held = {**row, "last_name": "Held-Row"}
    first, record = _in_flight_while_the_last_row_is_sent(scenario, app, url, second, held)
    assert first.status is not Status.UNCHANGED
    assert record.in_flight
    # Once the last row is settled, the store holds it, and a third run agrees.
    outcomes, _ = _run(scenario, app, url, [copy.deepcopy(held)])
    assert [o.status for o in outcomes] == [Status.UNCHANGED]
    outcomes, _ = _run(scenario, app, url, [copy.deepcopy(second)])
    assert outcomes[0].status is not Status.UNCHANGED
