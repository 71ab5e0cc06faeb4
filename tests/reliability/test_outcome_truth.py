"""Each status is true of the emulator: ``created`` only for a record that was not there
before the run, ``updated`` only for one that was, ``written`` for one holding the row's
data, and ``unchanged`` never without a state store (nothing was sent only when the
store confirmed identical data). The records are read from the emulator itself, before
and after, never from the report."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from contactsync_ivvy import DEMO_API_KEY as I_KEY
from contactsync_ivvy import DEMO_API_SECRET as I_SECRET
from contactsync_ivvy import IvvyAuth, IvvyEmulator
from contactsync_yespo import DEMO_API_KEY as Y_KEY

from contactsync import AsyncClient, Client, Outcome, Secret, Status
from contactsync._state import open_store
from contactsync.testing import EmulatorApp, EmulatorTransport, Faults, json_response
from tests.reliability.scenarios import SCENARIOS, Scenario, expected, people

BY_NAME = {s.name: s for s in SCENARIOS}
YESPO_RT, YESPO_BULK, IVVY = BY_NAME["yespo-realtime"], BY_NAME["yespo-bulk"], BY_NAME["ivvy"]


def _no_sleep(seconds: float) -> None:
    del seconds


async def _no_sleep_async(seconds: float) -> None:
    del seconds


def run(
    scenario: Scenario, app: EmulatorApp, rows: Sequence[dict[str, Any]], **options: Any
) -> list[Outcome]:
    config = scenario.config(max_retries=30)
    config["tenants"]["r"]["options"] = {**config["tenants"]["r"].get("options", {}), **options}
    with Client(config, "r", emulator=app, sleep=_no_sleep) as client:
        return sorted(client.upsert_many(list(rows)), key=lambda o: o.index)


def ids(app: EmulatorApp) -> set[str]:
    return {str(c["id"]) for c in app.emulator.contacts()}


def check_true_of_the_emulator(
    scenario: Scenario,
    app: EmulatorApp,
    before: set[str],
    rows: Sequence[dict[str, Any]],
    outcomes: Sequence[Outcome],
) -> None:
    """Every outcome against the emulator's records (``before``: the ids it held)."""
    held = {str(c["id"]): scenario.view(c) for c in app.emulator.contacts()}
    assert [o.index for o in outcomes] == list(range(len(rows)))
    for outcome in outcomes:
        row = rows[outcome.index]
        # No state store: nothing can be confirmed identical, so nothing is unchanged.
        assert outcome.status is not Status.UNCHANGED, outcome
        if outcome.status in (Status.CREATED, Status.UPDATED, Status.WRITTEN):
            assert outcome.remote_id in held, outcome
            assert held[outcome.remote_id] == expected(row), outcome
        if outcome.status is Status.CREATED:
            assert outcome.remote_id not in before, f"created, yet it existed: {outcome}"
        if outcome.status is Status.UPDATED:
            assert outcome.remote_id in before, f"updated, yet it is new: {outcome}"


# --- brand-new contacts are never "updated" ----------------------------------------------


@pytest.mark.parametrize("scenario", [YESPO_RT, YESPO_BULK, IVVY], ids=lambda s: s.name)
def test_brand_new_contacts_are_never_updated(scenario: Scenario) -> None:
    app = EmulatorApp(scenario.emulator())
    rows = people(30)
    outcomes = run(scenario, app, rows)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    assert not any(o.status is Status.UPDATED for o in outcomes)
    check_true_of_the_emulator(scenario, app, set(), rows, outcomes)
    # Neither platform's answer says whether it created: the statuses say so.
    assert {o.status for o in outcomes} == {Status.WRITTEN}


def test_ivvy_creates_without_update_if_exists_are_created() -> None:
    app = EmulatorApp(IVVY.emulator())
    rows = people(10)
    outcomes = run(IVVY, app, rows, update_if_exists=False)
    # Without updateIfExists and without an id, addOrUpdateContact only ever creates.
    assert {o.status for o in outcomes} == {Status.CREATED}
    check_true_of_the_emulator(IVVY, app, set(), rows, outcomes)


def test_a_second_run_is_updated_by_id_on_ivvy_and_written_on_yespo_bulk() -> None:
    for scenario, second in ((IVVY, Status.UPDATED), (YESPO_BULK, Status.WRITTEN)):
        app = EmulatorApp(scenario.emulator())
        rows = people(8)
        run(scenario, app, rows)
        before = ids(app)
        changed = [{**r, "last_name": r["last_name"] + "x"} for r in rows]
        outcomes = run(scenario, app, changed)
        # iVvy found each by its external id (a look-up in this run), then wrote by id.
        assert {o.status for o in outcomes} == {second}, scenario.name
        check_true_of_the_emulator(scenario, app, before, changed, outcomes)


# --- iVvy update_if_exists merges into contacts it did not make --------------------------


def _seed_ivvy(app: EmulatorApp, rows: Sequence[dict[str, Any]]) -> None:
    """Contacts made outside contactsync: the same names and emails, no external id."""
    auth = IvvyAuth(I_KEY, Secret(I_SECRET))
    with httpx.Client(
        base_url="https://ivvy.test", transport=EmulatorTransport(app), auth=auth
    ) as api:
        for row in rows:
            body = {k: row[k] for k in ("email",)}
            body.update(firstName=row["first_name"], lastName=row["last_name"])
            answer = api.post("/api/1.0/contact?action=addOrUpdateContact", json=body)
            assert answer.is_success, answer.text


def test_ivvy_update_if_exists_onto_existing_people_is_not_created() -> None:
    app = EmulatorApp(IVVY.emulator())
    rows = people(12)
    _seed_ivvy(app, rows[:6])  # half the input already on the account
    before = ids(app)
    assert len(before) == 6
    outcomes = run(IVVY, app, rows)  # update_if_exists defaults to true
    # iVvy matched first name + last name + email: six merged, six new, none duplicated.
    assert len(ids(app)) == 12
    merged = [o for o in outcomes if o.remote_id in before]
    assert len(merged) == 6
    assert not any(o.status is Status.CREATED for o in merged)
    assert not any(o.status is Status.CREATED for o in outcomes)
    check_true_of_the_emulator(IVVY, app, before, rows, outcomes)


# --- Yespo real time under applied-then-lost answers ------------------------------------


@pytest.mark.parametrize("seed", [3, 8])
def test_yespo_realtime_first_import_under_lost_answers_reports_no_unchanged(seed: int) -> None:
    app = EmulatorApp(YESPO_RT.emulator(), Faults(rate=0.4, seed=seed, kinds=("lost",)))
    rows = people(80)
    outcomes = run(YESPO_RT, app, rows)
    # Answers were lost after Yespo applied the request; the resend met Yespo's 409.
    assert app.faults_injected["lost"] > 10
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    check_true_of_the_emulator(YESPO_RT, app, set(), rows, outcomes)
    assert {o.status for o in outcomes} == {Status.WRITTEN}


def test_yespo_realtime_on_a_seeded_account_never_claims_created_or_updated() -> None:
    emulator = YESPO_RT.emulator()
    rows = people(40)
    with httpx.Client(
        base_url="https://yespo.test",
        transport=EmulatorTransport(EmulatorApp(emulator)),
        auth=("any", Y_KEY),
    ) as api:
        for row in rows[::2]:  # half the input already on the account, made elsewhere
            body = {
                "externalCustomerId": row["external_id"],
                "firstName": "Seeded",
                "channels": [{"type": "email", "value": row["email"]}],
            }
            assert api.post("/api/v1/contact", json=body).is_success
    app = EmulatorApp(emulator, Faults(rate=0.3, seed=5, kinds=("lost",)))
    before = ids(app)
    assert len(before) == 20
    outcomes = run(YESPO_RT, app, rows)
    assert app.faults_injected["lost"] > 0
    # Yespo's answer is only the id: half of these existed, half did not.
    assert {o.status for o in outcomes} == {Status.WRITTEN}
    check_true_of_the_emulator(YESPO_RT, app, before, rows, outcomes)
    assert sum(o.remote_id in before for o in outcomes) == 20


def test_yespo_realtime_writes_by_id_under_lost_answers_are_updated() -> None:
    app = EmulatorApp(YESPO_RT.emulator())
    rows = people(30)
    first = run(YESPO_RT, app, rows)
    before = ids(app)
    by_id = [
        {**row, "remote_id": o.remote_id, "last_name": row["last_name"] + "x"}
        for row, o in zip(rows, first, strict=True)
    ]
    app = EmulatorApp(app.emulator, Faults(rate=0.4, seed=4, kinds=("lost",)))
    outcomes = run(YESPO_RT, app, by_id)
    assert app.faults_injected["lost"] > 0
    # A PUT by id only updates; after a lost answer its 409 is verified by that id.
    assert {o.status for o in outcomes} == {Status.UPDATED}
    check_true_of_the_emulator(YESPO_RT, app, before, by_id, outcomes)


@pytest.mark.parametrize("seed", [2, 6])
def test_ivvy_creates_without_update_if_exists_under_lost_answers_are_created(seed: int) -> None:
    app = EmulatorApp(IVVY.emulator(), Faults(rate=0.4, seed=seed, kinds=("lost",)))
    rows = people(40)
    outcomes = run(IVVY, app, rows, update_if_exists=False)
    assert app.faults_injected["lost"] > 0
    # A lost create is looked up by its external id (not found before it was sent):
    # found, it is the one this run created.
    assert {o.status for o in outcomes} == {Status.CREATED}
    check_true_of_the_emulator(IVVY, app, set(), rows, outcomes)
    assert len(ids(app)) == 40


def _versions(count: int) -> list[dict[str, Any]]:
    """Each person three times: loyalty v0, v1, then v0 again (the last row repeats
    the first, so Yespo answers it 409 within the minute)."""
    rows = []
    for version in ("v0", "v1", "v0"):
        for row in people(count):
            rows.append({**row, "custom_fields": {"loyalty": version}})
    return rows


def test_yespo_realtime_last_row_repeating_the_first_wins() -> None:
    app = EmulatorApp(YESPO_RT.emulator())
    rows = _versions(10)
    outcomes = run(YESPO_RT, app, rows)
    # The third row is refused as a repeat of the first; Yespo holds the second's data:
    # written by the contact's id instead, so the last row wins and nothing fails.
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
    held = sorted(YESPO_RT.view(c) for c in app.emulator.contacts())
    assert held == sorted(expected(r) for r in rows[-10:])
    assert {o.status for o in outcomes[-10:]} == {Status.UPDATED}  # by id: it existed


def test_yespo_realtime_second_run_within_the_minute_ends_on_the_last_rows() -> None:
    app = EmulatorApp(YESPO_RT.emulator())
    rows = [
        {**row, "custom_fields": {"loyalty": version}}
        for version in ("v0", "v1", "v2")
        for row in people(10)
    ]
    run(YESPO_RT, app, rows)
    again = run(YESPO_RT, app, rows)  # every request a repeat of the first run's
    assert all(o.ok for o in again), [o.error for o in again if not o.ok][:3]
    assert not any(o.status is Status.UNCHANGED for o in again)
    held = sorted(YESPO_RT.view(c) for c in app.emulator.contacts())
    assert held == sorted(expected(r) for r in rows[-10:])


# --- failed is never claimed for a write that was applied --------------------------------


def _run_once(
    scenario: Scenario, app: EmulatorApp, rows: Sequence[dict[str, Any]]
) -> list[Outcome]:
    """One attempt per request (``retry_for = 0``): a lost answer is not resent."""
    with Client(scenario.config(retry_for=0.0), "r", emulator=app, sleep=_no_sleep) as client:
        return sorted(client.upsert_many(list(rows)), key=lambda o: o.index)


MAY_HAVE_APPLIED = ("outcome_unknown", "interrupted")


@pytest.mark.parametrize("scenario", [YESPO_RT, IVVY], ids=lambda s: s.name)
@pytest.mark.parametrize("seed", [1, 7])
def test_a_write_whose_answer_was_lost_is_never_failed_as_not_applied(
    scenario: Scenario, seed: int
) -> None:
    """A request safe to resend whose answer was lost, with no retry left, may have been
    applied: its row ends ``outcome_unknown``, never ``request_failed``."""
    # No groups: the setup that reads them would meet the faults first.
    scenario = attrs.evolve(scenario, tenant={**scenario.tenant, "groups": {}})
    app = EmulatorApp(scenario.emulator(), Faults(rate=0.5, seed=seed, kinds=("lost",)))
    rows = people(60)
    outcomes = _run_once(scenario, app, rows)
    assert app.faults_injected["lost"] > 0
    held = {scenario.view(c) for c in app.emulator.contacts()}
    applied_yet_failed = [o for o in outcomes if o.status is Status.FAILED
                          and expected(rows[o.index]) in held]  # fmt: skip
    assert applied_yet_failed, "no lost answer to a write that was applied: nothing checked"
    for outcome in applied_yet_failed:
        assert outcome.error is not None
        assert outcome.error.code in MAY_HAVE_APPLIED, outcome
    check_true_of_the_emulator(scenario, app, set(), rows, outcomes)


class _DropWritesById(EmulatorApp):
    """iVvy writes by id are answered by a dropped connection, not applied (on the wire
    just like an answer lost after applying); everything else is answered."""

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        if b"addOrUpdateContact" in request.url.raw_path and b'"id"' in request.content:
            raise httpx.RemoteProtocolError("connection closed", request=request)
        return super()._answer(request)


def test_ivvy_a_lost_write_by_id_is_not_updated_by_a_look_up() -> None:
    """The look-up that reconciles a lost create proves nothing about a write by id (the
    contact exists either way): that row is ``outcome_unknown``, never ``updated``."""
    emulator = IVVY.emulator()
    rows = people(10)
    run(IVVY, EmulatorApp(emulator), rows)
    before = {str(c["id"]) for c in emulator.contacts()}
    changed = [{**row, "last_name": row["last_name"] + "x"} for row in rows]
    app = _DropWritesById(emulator)
    outcomes = _run_once(IVVY, app, changed)
    assert {o.status for o in outcomes} == {Status.FAILED}, outcomes
    assert {o.error.code for o in outcomes if o.error} == {"outcome_unknown"}
    check_true_of_the_emulator(IVVY, app, before, changed, outcomes)


# --- a resume never makes a second record for one person ---------------------------------


def test_ivvy_a_resumed_create_without_update_if_exists_makes_no_second_contact(
    tmp_path: Path,
) -> None:
    """iVvy without ``update_if_exists``, people without external id: a run whose
    creates were applied but never confirmed (answers lost: as a run killed after
    sending) leaves them in doubt in the store; the next run with that store finds
    them by first name, last name and email instead of creating each a second time,
    and does not claim ``created`` for them."""
    emulator = IVVY.emulator()
    rows = [{k: v for k, v in row.items() if k != "external_id"} for row in people(12)]
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = IVVY.config(retry_for=0.0)
    config["tenants"]["r"]["options"] = {"update_if_exists": False}
    app = EmulatorApp(emulator, Faults(rate=1.0, seed=3, kinds=("lost",)))
    with Client(config, "r", emulator=app, sleep=_no_sleep, state=state) as client:
        first = list(client.upsert_many(rows))
    assert {o.error.code for o in first if o.error} == {"outcome_unknown"}
    before = {str(c["id"]) for c in emulator.contacts()}
    assert len(before) == 12  # every create was applied, its answer lost
    app = EmulatorApp(emulator)
    with Client(config, "r", emulator=app, sleep=_no_sleep, state=state) as client:
        outcomes = sorted(client.upsert_many(rows), key=lambda o: o.index)
    assert len(emulator.contacts()) == 12, "a second contact for one person"
    assert all(o.ok for o in outcomes), outcomes
    assert {o.status for o in outcomes} == {Status.UPDATED}  # found, written by id
    check_true_of_the_emulator(
        IVVY, app, before, [{**row, "external_id": None} for row in rows], outcomes
    )


@pytest.mark.parametrize("seed", [3, 8])
def test_ivvy_a_later_row_after_a_lost_create_in_one_run_makes_no_second_contact(
    seed: int,
) -> None:
    """Within one run and without a store: a person's first row was created but its
    answer lost (``outcome_unknown``); their later rows look the person up before
    creating, so iVvy without ``update_if_exists`` holds one contact per person."""
    emulator = IVVY.emulator()
    people_ = [{k: v for k, v in row.items() if k != "external_id"} for row in people(30)]
    rows = [{**row, "custom_fields": {"loyalty": v}} for v in ("v0", "v1", "v2") for row in people_]
    config = IVVY.config(retry_for=0.0)
    config["tenants"]["r"]["options"] = {"update_if_exists": False}
    app = EmulatorApp(emulator, Faults(rate=0.3, seed=seed, kinds=("lost",)))
    with Client(config, "r", emulator=app, sleep=_no_sleep) as client:
        outcomes = list(client.upsert_many(rows))
    assert app.faults_injected["lost"] > 0
    assert any(o.error is not None and o.error.code == "outcome_unknown" for o in outcomes)
    held = [(c["firstName"], c["lastName"], c["email"]) for c in emulator.contacts()]
    assert len(held) == len(set(held)) == 30, "a second contact for one person"


def test_ivvy_a_create_left_in_flight_by_a_killed_run_is_found_not_made_twice(
    tmp_path: Path,
) -> None:
    """The store as a run killed mid-write leaves it (keys marked in flight, nothing
    confirmed nor failed) while iVvy applied those creates: the next run finds each
    contact by first name, last name and email rather than creating a second one."""
    emulator = IVVY.emulator()
    rows = [{k: v for k, v in row.items() if k != "external_id"} for row in people(8)]
    config = IVVY.config(retry_for=0.0)
    config["tenants"]["r"]["options"] = {"update_if_exists": False}
    # Where the killed run would have marked them: the keys and account a run records.
    probe = f"sqlite:///{tmp_path / 'probe.db'}"
    with Client(config, "r", emulator=EmulatorApp(IVVY.emulator()), state=probe) as client:
        assert all(o.ok for o in client.upsert_many(rows))
    with sqlite3.connect(tmp_path / "probe.db") as db:
        marked = db.execute("SELECT key, account FROM contactsync_records").fetchall()
    assert len(marked) == len(rows)
    # The killed run: its creates applied on iVvy, its keys left in flight.
    with Client(config, "r", emulator=EmulatorApp(emulator)) as client:
        assert all(o.ok for o in client.upsert_many(rows))
    state = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(state) as store:
        run_id = store.begin_run("r")
        for key, account in marked:
            store.mark_in_flight("r", run_id, [key], account=account)
    before = {str(c["id"]) for c in emulator.contacts()}
    app = EmulatorApp(emulator)
    with Client(config, "r", emulator=app, sleep=_no_sleep, state=state) as client:
        outcomes = sorted(client.upsert_many(rows), key=lambda o: o.index)
    assert len(emulator.contacts()) == len(rows), "a second contact for one person"
    assert {o.status for o in outcomes} == {Status.UPDATED}  # found, written by id
    check_true_of_the_emulator(
        IVVY, app, before, [{**row, "external_id": None} for row in rows], outcomes
    )


class _Threaded(httpx.BaseTransport):
    """``app`` behind a sync transport: an ``AsyncClient`` sends each request from a
    worker thread, so the app may hold one without holding the run's event loop."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        return self.app(request)


class _HeldUntil(EmulatorApp):
    """Holds the request carrying ``marker`` (``arrived`` is set) until ``until()``."""

    def __init__(self, emulator: Any, marker: bytes, until: Callable[[], bool]) -> None:
        super().__init__(emulator)
        self.marker, self.until = marker, until
        self.arrived = threading.Event()

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        if self.marker in request.content and not self.arrived.is_set():
            self.arrived.set()
            deadline = time.monotonic() + 60  # a safety net, not a speed bound
            while not self.until() and time.monotonic() < deadline:
                time.sleep(0.005)
        return super()._answer(request)


def _in_flight(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        found = conn.execute("SELECT count(*) FROM contactsync_records WHERE in_flight")
        return int(found.fetchone()[0])


def test_ivvy_a_row_held_behind_another_persons_row_writes_by_its_stored_id(
    tmp_path: Path,
) -> None:
    """iVvy without ``update_if_exists``, with a store that holds both people's ids:
    ``strasse9@`` and ``straße9@`` (same name, no external id) are two contacts (iVvy
    lower-cases an address, and ``ß`` lowered is still ``ß``), but their keys fold to
    one, so the run keeps their rows in order. A ``strasse9@`` row taken while the
    ``straße9@`` row is in flight still writes by the id the store holds for it: never
    a second contact for that person."""
    emulator = IVVY.emulator()
    name = {"first_name": "Zoë", "last_name": "Smith"}
    sharp = {**name, "email": "straße9@example.com"}
    plain = {**name, "email": "strasse9@example.com"}
    db = tmp_path / "state.db"
    config = IVVY.config(retry_for=0.0)
    config["tenants"]["r"]["options"] = {"update_if_exists": False}
    with Client(config, "r", emulator=EmulatorApp(emulator), state=f"sqlite:///{db}") as client:
        first = {o.index: o for o in client.upsert_many([sharp, plain])}
    assert {o.status for o in first.values()} == {Status.CREATED}
    before = {str(c["id"]) for c in emulator.contacts()}
    assert len(before) == 2
    # The straße9 row is held inside iVvy until the strasse9 row is taken (marked in
    # flight), so that row is judged while the other is still in the run.
    app = _HeldUntil(emulator, b'"b1"', lambda: _in_flight(db) == 2)
    rows: list[dict[str, Any]] = [
        {**sharp, "custom_fields": {"loyalty": "b1"}},
        {**plain, "custom_fields": {"loyalty": "a1"}, "email": "strasse9@EXAMPLE.COM"},
    ]

    async def given() -> AsyncIterator[dict[str, Any]]:
        yield rows[0]
        assert await asyncio.to_thread(app.arrived.wait, 60)
        yield rows[1]

    async def go() -> list[Outcome]:
        async with AsyncClient(
            config, "r", transport=_Threaded(app), state=f"sqlite:///{db}", sleep=_no_sleep_async
        ) as client:
            return sorted([o async for o in client.upsert_many(given())], key=lambda o: o.index)

    outcomes = asyncio.run(go())
    assert app.arrived.is_set()
    assert len(emulator.contacts()) == 2, "a second contact for one person"
    assert [o.status for o in outcomes] == [Status.UPDATED, Status.UPDATED], outcomes
    assert [o.remote_id for o in outcomes] == [first[0].remote_id, first[1].remote_id]
    # iVvy holds the address as sent: the domain lower-cased.
    sent = [
        {**row, "email": str(row["email"]).lower(), "external_id": None, "phone": None}
        for row in rows
    ]
    check_true_of_the_emulator(IVVY, app, before, sent, outcomes)


class _FirstWriteById500(EmulatorApp):
    """The first iVvy write by id is answered 500 (not applied); the rest are answered."""

    def __init__(self, emulator: Any) -> None:
        super().__init__(emulator)
        self.refused = 0

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        by_id = b"addOrUpdateContact" in request.url.raw_path and b'"id"' in request.content
        if by_id and not self.refused:
            self.refused += 1
            return json_response(500, {"errorCode": 500, "message": "error"}), "500"
        return super()._answer(request)


def _taken_together(
    config: dict[str, Any], app: EmulatorApp, state: str, rows: list[dict[str, Any]]
) -> list[Outcome]:
    """``rows`` through the async client from an async iterator that yields them with
    no await between them, so the run takes them in one batch of its scheduler."""

    async def given() -> AsyncIterator[dict[str, Any]]:
        for row in rows:
            yield row

    async def go() -> list[Outcome]:
        async with AsyncClient(
            config, "r", emulator=app, state=state, sleep=_no_sleep_async
        ) as client:
            return sorted([o async for o in client.upsert_many(given())], key=lambda o: o.index)

    return asyncio.run(go())


def test_ivvy_a_later_row_after_a_refused_write_by_stored_id_makes_no_second_contact(
    tmp_path: Path,
) -> None:
    """iVvy without ``update_if_exists``, a store that holds the person's id, and two
    rows of them taken together (a one-shot iterator is not read ahead): the first
    row's write by that id is refused (500, not applied, no retry budget). The later
    row writes by the stored id too, rather than create a second contact."""
    emulator = IVVY.emulator()
    person = {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"}
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = IVVY.config(retry_for=0.0)
    config["tenants"]["r"]["options"] = {"update_if_exists": False}
    with Client(config, "r", emulator=EmulatorApp(emulator), state=state) as client:
        (first,) = list(client.upsert_many([person]))
    assert first.status is Status.CREATED
    app = _FirstWriteById500(emulator)
    rows = [{**person, "custom_fields": {"loyalty": v}} for v in ("v1", "v2")]
    outcomes = _taken_together(config, app, state, rows)
    assert app.refused == 1
    assert len(emulator.contacts()) == 1, "a second contact for one person"
    assert outcomes[0].status is Status.FAILED, outcomes
    assert outcomes[1].status is Status.UPDATED, outcomes
    assert outcomes[1].remote_id == first.remote_id
    (held,) = emulator.contacts()
    assert {f["value"] for f in held["customFields"]} == {"v2"}


class _WritesLost(EmulatorApp):
    """Every iVvy write is applied and its answer lost; look-ups are answered."""

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        response, fault = super()._answer(request)
        if b"addOrUpdateContact" in request.url.raw_path:
            raise httpx.ReadError("answer lost after the request was applied", request=request)
        return response, fault


class _FirstLookUp500(EmulatorApp):
    """The first iVvy look-up is answered 500; the rest are answered."""

    def __init__(self, emulator: Any) -> None:
        super().__init__(emulator)
        self.refused = 0

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        if b"getContactList" in request.url.raw_path and not self.refused:
            self.refused += 1
            return json_response(500, {"errorCode": 500, "message": "error"}), "500"
        return super()._answer(request)


def test_ivvy_a_later_row_of_a_person_in_doubt_looks_up_when_the_first_could_not(
    tmp_path: Path,
) -> None:
    """iVvy without ``update_if_exists``: an earlier run's create of a person without
    external id was applied, its answer lost (in doubt in the store). The next run has
    two rows of them, taken together; the first row's look-up is refused (500, no
    retry budget). The later row looks the person up too, rather than create."""
    emulator = IVVY.emulator()
    person = {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"}
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = IVVY.config(retry_for=0.0)
    config["tenants"]["r"]["options"] = {"update_if_exists": False}
    with Client(config, "r", emulator=_WritesLost(emulator), sleep=_no_sleep, state=state) as c:
        (first,) = list(c.upsert_many([person]))
    assert first.error is not None
    assert first.error.code == "outcome_unknown", first
    (made,) = emulator.contacts()
    app = _FirstLookUp500(emulator)
    rows = [{**person, "custom_fields": {"loyalty": v}} for v in ("v1", "v2")]
    outcomes = _taken_together(config, app, state, rows)
    assert app.refused == 1
    assert len(emulator.contacts()) == 1, "a second contact for one person"
    assert outcomes[0].status is Status.FAILED, outcomes
    assert outcomes[1].status is Status.UPDATED, outcomes
    assert outcomes[1].remote_id == str(made["id"])


def test_ivvy_a_create_in_doubt_is_found_as_ivvys_own_match_finds_it(tmp_path: Path) -> None:
    """iVvy without ``update_if_exists``: a create of Ann Lee ``ann@example.com`` was
    applied, its answer lost (in doubt in the store); then someone wrote the domain in
    capitals in iVvy's UI (``ann@EXAMPLE.COM``: the same address, as iVvy's own match
    on first name, last name and email holds it). The next run looks Ann up as iVvy
    matches her and writes by that contact's id: never a second contact. A contact
    whose part before the ``@`` differs is another person, and stays untouched."""
    emulator = IVVY.emulator()
    assert isinstance(emulator, IvvyEmulator)
    other = {"id": next(emulator._ids), "firstName": "Ann", "lastName": "Lee",
             "email": "Ann@example.com", "phone": None, "externalId": None,
             "customFields": {501: "other"}, "groups": {}, "companies": [],
             "status": 1, "smsStatus": 1}  # fmt: skip
    emulator.insert(other)
    person = {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"}
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = IVVY.config(retry_for=0.0)
    config["tenants"]["r"]["options"] = {"update_if_exists": False}
    with Client(config, "r", emulator=_WritesLost(emulator), sleep=_no_sleep, state=state) as c:
        (first,) = list(c.upsert_many([{**person, "custom_fields": {"loyalty": "v1"}}]))
    assert first.error is not None
    assert first.error.code == "outcome_unknown", first
    (made,) = [c for c in emulator.contacts() if c["id"] != other["id"]]
    edited = emulator.records[made["id"]]
    emulator.insert({**edited, "email": "ann@EXAMPLE.COM"})  # as edited in iVvy's UI
    app = EmulatorApp(emulator)
    with Client(config, "r", emulator=app, sleep=_no_sleep, state=state) as client:
        (outcome,) = list(client.upsert_many([{**person, "custom_fields": {"loyalty": "v2"}}]))
    assert len(emulator.contacts()) == 2, "a second contact for one person"
    assert outcome.status is Status.UPDATED, outcome
    assert outcome.remote_id == str(made["id"])
    loyalty = {c["id"]: c["customFields"][0]["value"] for c in emulator.contacts()}
    assert loyalty == {other["id"]: "other", made["id"]: "v2"}


class _LostThen500(EmulatorApp):
    """A write's first attempt is applied and its answer lost; every resend of it is
    answered 500 (not applied). Look-ups are answered."""

    def __init__(self, emulator: Any) -> None:
        super().__init__(emulator)
        self.seen: set[bytes] = set()

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        write = request.method in ("POST", "PUT") and (
            b"addOrUpdateContact" in request.url.raw_path
            or (
                request.url.path.startswith("/api/v1/contact")
                and request.url.path != "/api/v1/contacts/search"
            )
        )
        if not write:
            return super()._answer(request)
        if request.content in self.seen:
            return json_response(500, {"error": "server error"}), "500"
        self.seen.add(request.content)
        super()._answer(request)
        raise httpx.ReadError("answer lost after the request was applied", request=request)


@pytest.mark.parametrize("scenario", [YESPO_RT, IVVY], ids=lambda s: s.name)
def test_a_lost_answer_then_server_errors_until_the_budget_ends_is_outcome_unknown(
    scenario: Scenario,
) -> None:
    """The first attempt was applied (its answer lost); the resends met 500s until the
    retries ran out: the last answer says nothing about the first attempt. The row is
    ``outcome_unknown``, or what a look-up proves (iVvy finds a lost create by its
    external id), never ``request_failed``."""
    scenario = attrs.evolve(scenario, tenant={**scenario.tenant, "groups": {}})
    app = _LostThen500(scenario.emulator())
    rows = people(5)
    outcomes = run(scenario, app, rows)
    held = {scenario.view(c) for c in app.emulator.contacts()}
    assert all(expected(row) in held for row in rows)  # every first attempt applied
    codes = {o.error.code if o.error else o.status.value for o in outcomes}
    assert codes == {"written" if scenario.name == "ivvy" else "outcome_unknown"}, outcomes
    check_true_of_the_emulator(scenario, app, set(), rows, outcomes)


def test_ivvy_a_known_person_in_another_letter_case_is_written_by_their_id(
    tmp_path: Path,
) -> None:
    """iVvy without ``update_if_exists``, a state store: a person stored as
    ``Ann.Lee@…`` comes back as ``ann.lee@…`` (iVvy holds addresses without letter
    case: one contact). The run writes by the stored id instead of making a second."""
    emulator = IVVY.emulator()
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = IVVY.config(retry_for=0.0)
    config["tenants"]["r"]["options"] = {"update_if_exists": False}
    row = {"first_name": "Ann", "last_name": "Lee", "email": "Ann.Lee@example.com"}
    for email in ("Ann.Lee@example.com", "ann.lee@example.com"):
        with Client(config, "r", emulator=EmulatorApp(emulator), state=state) as client:
            (outcome,) = client.upsert_many([{**row, "email": email}])
        assert outcome.ok, outcome
    assert len(emulator.contacts()) == 1, "a second contact for one person"
    assert outcome.status is Status.UPDATED
