"""The store's side of coarse keys: a confirmation ends when a write to the same record
is confirmed under another key (same remote id, else same coarse key), the newest order
of a coarse key, and stores from before schema 4 get their coarse keys."""

from __future__ import annotations

import datetime

import pytest
import sqlalchemy as sa

from contactsync._state import Confirmed, StateStore, _schema, open_store
from contactsync._state._coarse import coarse_key
from tests.state.test_schema import engine_for

ACCOUNT = "acct"


def _fingerprints(store: StateStore, *keys: str) -> dict[str, str | None]:
    found = store.get_many("t", list(keys))
    return {key: found[key].fingerprint for key in keys}


def test_coarse_key_lowercases_addresses_only() -> None:
    assert coarse_key("email=Ann@example.com") == "email=ann@example.com"
    assert (
        coarse_key("email+first_name=STRASSE@x.de\x1fZoë") == "email+first_name=strasse@x.de\x1fZoë"
    )
    assert coarse_key("email=straße@x.de") != coarse_key("email=strasse@x.de")
    assert coarse_key("external_id=ABC") == "external_id=ABC"  # two people, as exact
    assert coarse_key("first_name+last_name+email=Ann\x1fSmith\x1fAnn@X.com") == (
        "first_name+last_name+email=Ann\x1fSmith\x1fann@x.com"
    )


def test_a_write_at_the_same_id_under_another_key_ends_the_confirmation(
    store: StateStore,
) -> None:
    store.confirm("t", [Confirmed("external_id=p1", "f1", "m", "created", "R1", "raw", (1, 0))],
                  account=ACCOUNT)  # fmt: skip
    store.confirm(
        "t", [Confirmed("external_id=other", "f9", "m", "created", "R9")], account=ACCOUNT
    )
    store.confirm("t", [Confirmed("email=fam@x.com", "f2", "m", "updated", "R1", None, (2, 0))],
                  account=ACCOUNT)  # fmt: skip
    record = store.get_many("t", ["external_id=p1"])["external_id=p1"]
    assert (record.fingerprint, record.raw_hash) == (None, None)  # sent again next time
    assert (record.remote_id, record.order_run, record.order_index) == ("R1", 1, 0)
    assert _fingerprints(store, "email=fam@x.com", "external_id=other") == {
        "email=fam@x.com": "f2",
        "external_id=other": "f9",
    }


def test_without_an_id_the_coarse_key_names_the_record(store: StateStore) -> None:
    store.confirm("t", [Confirmed("email=Ann@x.com", "f1", "m", "written")], account=ACCOUNT)
    store.confirm("t", [Confirmed("email=straße@x.com", "f3", "m", "written")], account=ACCOUNT)
    store.confirm("t", [Confirmed("email=ann@x.com", "f2", "m", "written")], account=ACCOUNT)
    assert _fingerprints(store, "email=Ann@x.com", "email=ann@x.com", "email=straße@x.com") == {
        "email=Ann@x.com": None,
        "email=ann@x.com": "f2",
        "email=straße@x.com": "f3",
    }


def test_within_one_confirm_the_latest_write_of_a_record_keeps_it(store: StateStore) -> None:
    store.confirm(
        "t",
        [
            Confirmed("email=ann@x.com", "f2", "m", "written", "R", None, (5, 7)),
            Confirmed("email=Ann@x.com", "f1", "m", "written", "R", None, (5, 3)),
        ],
        account=ACCOUNT,
    )
    assert _fingerprints(store, "email=Ann@x.com", "email=ann@x.com") == {
        "email=Ann@x.com": None,
        "email=ann@x.com": "f2",
    }


def test_another_accounts_records_and_refreshes_are_left_alone(store: StateStore) -> None:
    store.confirm("t", [Confirmed("email=Ann@x.com", "f1", "m", "written", "R")], account="other")
    store.confirm("t", [Confirmed("email=ANN@x.com", "f3", "m", "written", "R")], account=ACCOUNT)
    # A refresh of an unchanged contact's raw hash is no write: it ends nothing.
    store.confirm("t", [Confirmed("email=ann@x.com", "f2", "m", "unchanged", "R")], account=ACCOUNT)
    assert _fingerprints(store, "email=Ann@x.com", "email=ANN@x.com", "email=ann@x.com") == {
        "email=Ann@x.com": "f1",
        "email=ANN@x.com": "f3",
        "email=ann@x.com": "f2",
    }


def test_newest_orders_are_per_coarse_key_and_account(store: StateStore) -> None:
    store.confirm("t", [Confirmed("email=ann@x.com", "f", "m", "written", None, None, (4, 2))],
                  account=ACCOUNT)  # fmt: skip
    store.confirm("t", [Confirmed("email=ANN@x.com", "f", "m", "written", None, None, (3, 9))],
                  account=ACCOUNT)  # fmt: skip
    store.confirm("t", [Confirmed("email=bob@x.com", "f", "m", "written", None, None, (9, 9))],
                  account="other")  # fmt: skip
    assert store.newest_orders("t", ACCOUNT, ["email=Ann@x.com", "email=bob@x.com"]) == {
        "email=Ann@x.com": (4, 2)
    }


def test_a_version_3_store_gets_its_coarse_keys(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_schema, "MIGRATIONS", _schema.MIGRATIONS[:3])
    open_store(url).close()
    engine = engine_for(url)
    now = datetime.datetime(2026, 1, 1)
    try:
        with engine.begin() as conn:
            for key in ("email=Ann@x.com", "external_id=P1"):
                conn.execute(
                    sa.text(
                        "INSERT INTO contactsync_records (tenant, key, fingerprint, in_flight, "
                        "updated_at, account) VALUES ('t', :k, 'f', :no, :at, :a)"
                    ),
                    {"k": key, "no": False, "at": now, "a": ACCOUNT},
                )
    finally:
        engine.dispose()
    monkeypatch.undo()
    with open_store(url) as store:
        store.confirm("t", [Confirmed("email=ann@x.com", "f2", "m", "written")], account=ACCOUNT)
        assert _fingerprints(store, "email=Ann@x.com", "external_id=P1") == {
            "email=Ann@x.com": None,
            "external_id=P1": "f",
        }
