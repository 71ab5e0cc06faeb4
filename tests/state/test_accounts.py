"""Remote ids belong to one platform account (rule 10): a state store carried to
another account (another host, another key on the same host, another app id) never
writes by the ids, nor trusts the confirmations, of the first one."""

from __future__ import annotations

import asyncio
import base64
import copy
import itertools
import logging
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from contactsync_ivvy import DEMO_API_KEY as I_KEY
from contactsync_ivvy import DEMO_API_SECRET as I_SECRET
from contactsync_ivvy import IvvyProvider
from contactsync_yespo import YespoEmulator

from contactsync import AsyncClient, Client, Status, TenantLocked
from contactsync._state import Confirmed, open_store
from contactsync._state._url import parse
from contactsync.provider import Registry, Request, Steps
from contactsync.testing import Emulator, EmulatorApp
from tests.reliability.scenarios import SCENARIOS, Scenario, expected, people

IVVY = next(s for s in SCENARIOS if s.name == "ivvy")
GLEANTAP = next(s for s in SCENARIOS if s.name == "gleantap")
YESPO = next(s for s in SCENARIOS if s.name == "yespo-realtime")
HOST_A, HOST_B = "https://a.example.test", "https://b.example.test"
KEY_B, SECRET_B = "kB7-account-b-key-0123456789", "sB7-account-b-secret-0123456789"


def _config(scenario: Scenario, base_url: str, **tenant: Any) -> dict[str, Any]:
    config = copy.deepcopy(scenario.config())
    table = config["tenants"]["r"]
    table["base_url"] = base_url
    for key, value in tenant.items():
        table[key] = {**table[key], **value} if isinstance(value, dict) else value
    return config


def _run(
    config: dict[str, Any], app: EmulatorApp, url: str | None, records: list[dict[str, Any]]
) -> tuple[list[Any], int]:
    with Client(config, "r", emulator=app, sleep=lambda s: None, state=url) as client:
        run = client.upsert_many(records)
        return sorted(run, key=lambda o: o.index), run.summary.requests


def _held(scenario: Scenario, emulator: Emulator) -> list[tuple[Any, ...]]:
    return sorted(scenario.view(c) for c in emulator.contacts())


def _seeded(scenario: Scenario, emulator: Emulator, config: dict[str, Any]) -> list[Any]:
    """Account B already holds other people, written without the store: their
    platform ids are the very ids account A gave the input's people."""
    others = people(60, start=1000)
    _run(config, EmulatorApp(emulator), None, others)
    return sorted(map(expected, others))


def _ivvy_b(*keys: tuple[str, str]) -> Emulator:
    emulator = IVVY.emulator()
    emulator.keys.update(dict(keys))  # type: ignore[attr-defined]
    return emulator


def _check_b(
    scenario: Scenario, b: Emulator, others: list[Any], records: list[dict[str, Any]]
) -> None:
    held = _held(scenario, b)
    assert sorted(set(others) & set(held)) == others  # none of B's people overwritten
    assert sorted(set(held) - set(others)) == sorted(map(expected, records))
    assert len(held) == len(others) + len(records)


def test_ivvy_store_carried_to_another_host_never_writes_by_its_ids(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    records = people(60)
    a, b = IVVY.emulator(), IVVY.emulator()
    first, _ = _run(_config(IVVY, HOST_A), EmulatorApp(a), url, records)
    assert {o.status for o in first} == {Status.WRITTEN}
    config_b = _config(IVVY, HOST_B)
    others = _seeded(IVVY, b, config_b)
    with caplog.at_level(logging.INFO, logger="contactsync"):
        second, sent = _run(config_b, EmulatorApp(b), url, records)
    _check_b(IVVY, b, others, records)
    # Looked up (nobody has these external ids in B; nobody has their names either)
    # and written (an iVvy create with update_if_exists does not say whether it
    # matched): three requests each.
    assert [o.status for o in second] == [Status.WRITTEN] * 60
    assert sent == 180
    warned = [r for r in caplog.records if "another platform account" in r.getMessage()]
    assert len(warned) == 1
    assert warned[0].levelno == logging.WARNING
    assert "60 record(s)" in warned[0].getMessage()
    # Back on A: the store now holds B's ids (one record per person), so A's people
    # are looked up again and found, never written by B's ids.
    changed = [{**r, "last_name": "Again"} for r in records]
    third, sent = _run(_config(IVVY, HOST_A), EmulatorApp(a), url, changed)
    assert sent == 120
    assert [o.status for o in third] == [Status.UPDATED] * 60
    assert [o.remote_id for o in third] == [o.remote_id for o in first]
    assert _held(IVVY, a) == sorted(map(expected, changed))


def test_ivvy_same_host_another_key_is_another_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    records = people(50)
    a, b = IVVY.emulator(), _ivvy_b((KEY_B, SECRET_B))
    _run(_config(IVVY, HOST_A), EmulatorApp(a), url, records)
    config_b = _config(IVVY, HOST_A, credentials={"api_key": KEY_B, "api_secret": SECRET_B})
    others = _seeded(IVVY, b, config_b)
    second, sent = _run(config_b, EmulatorApp(b), url, records)
    _check_b(IVVY, b, others, records)
    assert [o.status for o in second] == [Status.WRITTEN] * 50
    assert sent == 150  # by external id, by name, a create each


def test_yespo_another_key_gets_every_contact(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    records = people(40)
    a = YESPO.emulator()
    ticks = itertools.count()
    b = YespoEmulator(api_keys=(KEY_B,), clock=lambda: next(ticks) * 0.01)
    b.segment("VIP")
    _run(_config(YESPO, HOST_A), EmulatorApp(a), url, records)
    config_b = _config(YESPO, HOST_A, credentials={"api_key": KEY_B})
    others = _seeded(YESPO, b, config_b)
    # The store confirmed these people in A; B has never seen them: none is unchanged.
    second, sent = _run(config_b, EmulatorApp(b), url, records)
    assert Status.UNCHANGED not in {o.status for o in second}
    assert sent >= 40
    _check_b(YESPO, b, others, records)


def test_gleantap_another_app_id_looks_people_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    # Without external ids Gleantap matches email + first name; the store's record of
    # such a person lets a run skip the look-up, in the account that confirmed it only.
    records = [{k: v for k, v in r.items() if k != "external_id"} for r in people(30)]
    a, b = GLEANTAP.emulator(), GLEANTAP.emulator()
    b.app_ids = {"app-b"}  # type: ignore[attr-defined]
    _first, sent = _run(_config(GLEANTAP, HOST_A), EmulatorApp(a), url, records)
    assert sent == 60
    changed = [{**r, "last_name": "B"} for r in records]
    config_b = _config(GLEANTAP, HOST_A, options={"app_id": "app-b"})
    _second, sent = _run(config_b, EmulatorApp(b), url, changed)
    assert sent == 60  # a look-up and a write each, as for people never seen
    assert sorted(c["last_name"] for c in b.contacts()) == ["B"] * 30


def test_a_new_key_keeps_the_ids_when_named_and_read_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    records = people(30)
    a = _ivvy_b((KEY_B, SECRET_B))  # one account, two keys (the old one, then a new one)
    named = {"account": "acme-events"}
    _run(_config(IVVY, HOST_A, **named), EmulatorApp(a), url, records)
    rotated = _config(IVVY, HOST_A, credentials={"api_key": KEY_B, "api_secret": SECRET_B}, **named)
    app = EmulatorApp(a)
    second, sent = _run(rotated, app, url, records)
    assert sent == 0
    assert app.stats()["requests"] == 1  # the read-back of one stored id, nothing else
    assert [o.status for o in second] == [Status.UNCHANGED] * 30
    assert len(a.contacts()) == 30


def test_a_new_key_without_an_account_name_is_a_new_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    records = people(30)
    a = _ivvy_b((KEY_B, SECRET_B))
    _run(_config(IVVY, HOST_A), EmulatorApp(a), url, records)
    rotated = _config(IVVY, HOST_A, credentials={"api_key": KEY_B, "api_secret": SECRET_B})
    second, sent = _run(rotated, EmulatorApp(a), url, records)
    assert sent == 60  # looked up again (found: the same account after all) and written
    assert [o.status for o in second] == [Status.UPDATED] * 30
    assert len(a.contacts()) == 30


def test_a_named_account_whose_ids_do_not_read_back_is_another(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    records = people(60)
    a, b = IVVY.emulator(), _ivvy_b((KEY_B, SECRET_B))
    named = {"account": "acme-events"}
    _run(_config(IVVY, HOST_A, **named), EmulatorApp(a), url, records)
    # The same name, but the new key reaches another account (a mistake in the config).
    config_b = _config(
        IVVY, HOST_A, credentials={"api_key": KEY_B, "api_secret": SECRET_B}, **named
    )
    others = _seeded(IVVY, b, config_b)
    second, sent = _run(config_b, EmulatorApp(b), url, records)
    _check_b(IVVY, b, others, records)
    assert [o.status for o in second] == [Status.WRITTEN] * 60
    # The read-back that failed, then two look-ups (external id, name) and a create each.
    assert sent == 1 + 180


def _forget_accounts(url: str) -> None:
    """Make the store look written before accounts were recorded."""
    engine = sa.create_engine(parse(url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE contactsync_records SET account = NULL"))
            conn.execute(sa.text("UPDATE contactsync_tenants SET account = NULL"))
    finally:
        engine.dispose()


def test_records_from_before_accounts_are_adopted_only_when_they_read_back(
    tmp_path: Path,
) -> None:
    records = people(30)
    # Same host and mapping, and a stored id reads back: the store's own account.
    url = f"sqlite:///{tmp_path / 'same.db'}"
    a = IVVY.emulator()
    _run(_config(IVVY, HOST_A), EmulatorApp(a), url, records)
    _forget_accounts(url)
    app = EmulatorApp(a)
    second, _ = _run(_config(IVVY, HOST_A), app, url, records)
    assert app.stats()["requests"] == 1  # the read-back
    assert [o.status for o in second] == [Status.UNCHANGED] * 30
    # Same config, but the key now reaches another account: nothing reads back.
    url = f"sqlite:///{tmp_path / 'moved.db'}"
    a, b = IVVY.emulator(), IVVY.emulator()
    _run(_config(IVVY, HOST_A), EmulatorApp(a), url, records)
    _forget_accounts(url)
    others = _seeded(IVVY, b, _config(IVVY, HOST_A))
    third, _ = _run(_config(IVVY, HOST_A), EmulatorApp(b), url, records)
    _check_b(IVVY, b, others, records)
    assert [o.status for o in third] == [Status.WRITTEN] * 30


def test_the_store_holds_no_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    a = _ivvy_b((KEY_B, SECRET_B))
    config = _config(IVVY, HOST_A, credentials={"api_key": KEY_B, "api_secret": SECRET_B})
    _run(config, EmulatorApp(a), url, people(5))
    connection = sqlite3.connect(tmp_path / "state.db")
    try:
        dump = "\n".join(connection.iterdump())
    finally:
        connection.close()
    files = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert "account" in dump
    assert len(dump) > 1000
    for secret in (KEY_B, SECRET_B):
        raw = secret.encode()
        for form in (
            raw,
            raw.hex().encode(),
            base64.b64encode(raw),
            base64.urlsafe_b64encode(raw),
            urllib.parse.quote(secret).encode(),
            secret[:12].encode(),  # no recognisable part either
        ):
            assert form.decode() not in dump
            assert form not in files


def test_a_confirm_never_keeps_another_accounts_id(url: str) -> None:
    with open_store(url) as store:
        store.confirm("t", [Confirmed("k", "f", "m", "created", "17")], account="a")
        store.confirm("t", [Confirmed("k", "f", "m", "written")], account="a")
        assert store.get_many("t", ["k"])["k"].remote_id == "17"  # same account: kept
        store.confirm("t", [Confirmed("k", "f", "m", "written")], account="b")
        record = store.get_many("t", ["k"])["k"]
        assert (record.remote_id, record.account) == (None, "b")
        assert store.accounts("t") == {"b": 1}


def test_plan_against_another_account_plans_every_contact(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    records = people(5)
    _run(_config(IVVY, HOST_A), EmulatorApp(IVVY.emulator()), url, records)

    def planned(base_url: str) -> list[Any]:
        with (
            open_store(url, read_only=True) as store,
            Client(_config(IVVY, base_url), "r", state=store) as client,
        ):
            return list(client.plan(records))

    assert {getattr(p, "status", None) for p in planned(HOST_A)} == {Status.UNCHANGED}
    other = planned(HOST_B)
    assert not [p for p in other if getattr(p, "status", None) is Status.UNCHANGED]
    # Each looked up by external id first (then by name: the contacts updateIfExists
    # could land on), and never written by one of A's ids.
    actions = [p.url.partition("action=")[2] for p in other if not p.sent]
    assert actions.count("getContactList") == 10
    writes = [p.body for p in other if p.url.endswith("addOrUpdateContact")]
    assert len(writes) == 5
    assert not [body for body in writes if "id" in body]


def test_an_async_run_is_refused_while_the_tenant_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"

    async def go() -> None:
        async with AsyncClient(_config(IVVY, HOST_A), "r", state=url) as client:
            [o async for o in client.upsert_many(people(2))]

    with open_store(url) as store:
        lock = store.tenant_lock("r")
        assert lock.try_acquire("c" * 32)[0]
        try:
            with pytest.raises(TenantLocked, match=r"c{32}"):
                asyncio.run(go())
        finally:
            lock.release()


class _Reporting(IvvyProvider):
    """iVvy as if it reported an account id for the credentials (it documents none)."""

    name = "ivvy-reporting"
    reported: ClassVar[dict[str, str]] = {}

    def reported_account(self) -> Steps[str | None]:
        response = yield Request("POST", "/api/1.0/test?action=ping", json={}, read_only=True)
        assert response is not None
        return self.reported.get(self.tenant.credentials.api_key.reveal())


def test_the_account_a_platform_reports_is_the_account(tmp_path: Path) -> None:
    registry = Registry()
    registry.register(_Reporting)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    records = people(20)
    a = _ivvy_b((KEY_B, SECRET_B))
    _Reporting.reported.update({I_KEY: "acct-1", KEY_B: "acct-1"})

    def run(credentials: dict[str, str], host: str = HOST_A) -> tuple[list[Any], int]:
        config = _config(IVVY, host, provider="ivvy-reporting", credentials=credentials)
        with Client(config, "r", emulator=EmulatorApp(a), state=url, registry=registry) as c:
            run = c.upsert_many(records)
            return sorted(run, key=lambda o: o.index), run.summary.requests

    run({"api_key": I_KEY, "api_secret": I_SECRET})
    # Another key, no account name: the platform says it is the same account.
    second, sent = run({"api_key": KEY_B, "api_secret": SECRET_B})
    assert [o.status for o in second] == [Status.UNCHANGED] * 20
    assert sent == 0
    # The platform now reports another account for that key: nothing is reused.
    _Reporting.reported[KEY_B] = "acct-2"
    third, sent = run({"api_key": KEY_B, "api_secret": SECRET_B})
    assert [o.status for o in third] == [Status.UPDATED] * 20  # found by look-up
    assert sent == 1 + 40  # the account asked for, then a look-up and a write each
