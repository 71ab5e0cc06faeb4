"""The store's behaviour, the same on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime
import pickle
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from contactsync import Status
from contactsync._state import (
    NEVER_CONFIRMED,
    Confirmed,
    FailedEntry,
    ReadOnlyStore,
    StateError,
    StateStore,
    open_store,
)

T = "acme"


def confirmed(key: str, fp: str = "f1", **kw: Any) -> Confirmed:
    return Confirmed(
        key,
        fp,
        str(kw.pop("mapping", "m1")),
        str(kw.pop("status", "created")),
        **kw,
    )


def test_new_store_is_empty(store: StateStore) -> None:
    assert store.get_many(T, ["external_id=c1"]) == {}
    assert store.in_flight(T) == []
    summary = store.summary(T)
    assert summary.records == 0
    assert summary.by_status == {}
    assert summary.last_run is None
    assert summary.mapping_fingerprint is None


def test_confirm_then_read(store: StateStore) -> None:
    before = datetime.datetime.now(datetime.UTC)
    store.confirm(
        T,
        [
            Confirmed("external_id=c1", "f1", "m1", "created", remote_id="r1", raw_hash="h1"),
            Confirmed("external_id=c2", "f2", "m1", Status.UPDATED),
        ],
    )
    got = store.get_many(T, ["external_id=c1", "external_id=c2", "external_id=nope"])
    assert set(got) == {"external_id=c1", "external_id=c2"}
    one = got["external_id=c1"]
    assert (one.fingerprint, one.mapping_fingerprint, one.raw_hash, one.remote_id) == (
        "f1",
        "m1",
        "h1",
        "r1",
    )
    assert one.last_status == "created"
    assert one.last_error_code is None
    assert not one.in_flight
    assert one.tenant == T
    assert one.updated_at.tzinfo is datetime.UTC
    assert before - datetime.timedelta(seconds=5) <= one.updated_at
    assert got["external_id=c2"].last_status == "updated"
    assert got["external_id=c2"].remote_id is None


def test_is_current(store: StateStore) -> None:
    store.confirm(T, [Confirmed("k", "f1", "m1", "updated", raw_hash="h1")])
    record = store.get_many(T, ["k"])["k"]
    assert record.is_current("f1", "m1")
    assert not record.is_current("f2", "m1")  # the payload changed
    assert not record.is_current("f1", "m2")  # the mapping changed: resend everything
    assert record.raw_is_current("h1", "m1")
    assert not record.raw_is_current("h2", "m1")
    assert not record.raw_is_current("h1", "m2")


def test_a_later_confirm_replaces_and_keeps_the_known_remote_id(store: StateStore) -> None:
    store.confirm(T, [Confirmed("k", "f1", "m1", "created", remote_id="r1", raw_hash="h1")])
    store.confirm(T, [Confirmed("k", "f2", "m2", "updated")])
    record = store.get_many(T, ["k"])["k"]
    assert (record.fingerprint, record.mapping_fingerprint, record.last_status) == (
        "f2",
        "m2",
        "updated",
    )
    assert record.remote_id == "r1"  # the bulk import gave no id: keep the one we had
    assert record.raw_hash is None  # but a raw hash is only valid for its own write
    store.confirm(T, [Confirmed("k", "f2", "m2", "unchanged", remote_id="r9")])
    assert store.get_many(T, ["k"])["k"].remote_id == "r9"


def test_the_last_entry_for_a_key_wins(store: StateStore) -> None:
    store.confirm(T, [confirmed("k", "f1"), confirmed("other"), confirmed("k", "f3")])
    assert store.get_many(T, ["k"])["k"].fingerprint == "f3"
    store.record_failure(T, [FailedEntry("k", "a"), FailedEntry("k", "b")])
    assert store.get_many(T, ["k"])["k"].last_error_code == "b"


def test_in_flight_markers_until_confirmed_or_failed(store: StateStore) -> None:
    store.confirm(T, [Confirmed("old", "f0", "m1", "created", remote_id="r0")])
    run = store.begin_run(T)
    store.mark_in_flight(T, run, ["old", "new", "bad", "old"])
    flying = store.in_flight(T)
    assert [r.key for r in flying] == ["bad", "new", "old"]
    assert all(r.in_flight and r.run_id == run for r in flying)
    by_key = {r.key: r for r in flying}
    # A marker never erases what was confirmed before, and a new identity has nothing.
    assert (by_key["old"].fingerprint, by_key["old"].remote_id) == ("f0", "r0")
    assert by_key["old"].last_status == "created"
    assert not by_key["old"].is_current("f0", "m1")  # in flight: the platform may differ
    assert by_key["new"].fingerprint is None
    assert by_key["new"].last_status is None
    assert store.summary(T).in_flight == 3

    store.confirm(T, [confirmed("new", "f1"), confirmed("old", "f1")])
    store.record_failure(T, [FailedEntry("bad", "platform_error")])
    assert store.in_flight(T) == []
    records = store.get_many(T, ["old", "new", "bad"])
    assert records["old"].run_id == run
    assert records["new"].is_current("f1", "m1")


def test_a_failure_keeps_what_was_confirmed(store: StateStore) -> None:
    store.confirm(T, [Confirmed("k", "f1", "m1", "created", remote_id="r1", raw_hash="h1")])
    store.record_failure(T, [FailedEntry("k", "request_failed")])
    record = store.get_many(T, ["k"])["k"]
    assert (record.fingerprint, record.remote_id, record.raw_hash) == ("f1", "r1", "h1")
    assert (record.last_status, record.last_error_code) == ("failed", "request_failed")
    assert not record.is_current("f1", "m1")  # sent again next run
    assert not record.raw_is_current("h1", "m1")
    store.confirm(T, [confirmed("k", "f1", status="unchanged")])
    assert store.get_many(T, ["k"])["k"].last_error_code is None


def test_rejected_and_skipped(store: StateStore) -> None:
    store.record_failure(
        T,
        [
            FailedEntry("r", "invalid_contact", status="rejected"),
            FailedEntry("s", status="skipped"),
        ],
    )
    got = store.get_many(T, ["r", "s"])
    assert (got["r"].last_status, got["r"].last_error_code) == ("rejected", "invalid_contact")
    assert (got["s"].last_status, got["s"].fingerprint) == ("skipped", None)


def test_statuses_are_checked(store: StateStore) -> None:
    with pytest.raises(ValueError, match="a confirmed status must be one of"):
        store.confirm(T, [confirmed("ok"), Confirmed("k", "f", "m", "failed")])
    with pytest.raises(ValueError, match="a failed status must be one of"):
        store.record_failure(T, [FailedEntry("k", status="created")])
    assert store.get_many(T, ["ok", "k"]) == {}  # nothing of a refused call is written
    # A str enum is stored as its value (a driver could otherwise write its name).
    store.confirm(T, [Confirmed("k", "f", "m", Status.UNCHANGED)])
    store.record_failure(T, [FailedEntry("j", status=Status.FAILED)])
    got = store.get_many(T, ["k", "j"])
    assert (got["k"].last_status, got["j"].last_status) == ("unchanged", "failed")
    assert type(got["k"].last_status) is str


def test_tenants_are_apart(store: StateStore) -> None:
    store.confirm("a", [confirmed("k", "fa")])
    store.confirm("b", [confirmed("k", "fb")])
    store.mark_in_flight("b", store.begin_run("b"), ["x"])
    assert store.get_many("a", ["k"])["k"].fingerprint == "fa"
    assert store.get_many("b", ["k"])["k"].fingerprint == "fb"
    assert store.in_flight("a") == []
    assert store.forget("b") == 2
    assert store.get_many("b", ["k", "x"]) == {}
    assert store.summary("b").last_run is None
    assert store.get_many("a", ["k"])["k"].fingerprint == "fa"
    assert store.forget("nobody") == 0


def test_many_keys(store: StateStore) -> None:
    keys = [f"external_id=c{n}" for n in range(4500)]  # more than one IN list
    store.confirm(T, [confirmed(k, f"f{n}") for n, k in enumerate(keys)])
    got = store.get_many(T, [*keys, "missing", keys[0]])
    assert len(got) == 4500
    assert got["external_id=c4499"].fingerprint == "f4499"
    assert store.get_many(T, []) == {}
    store.confirm(T, [])
    store.record_failure(T, [])
    store.mark_in_flight(T, "run", [])


def test_every_look_up_size(store: StateStore) -> None:
    """Each size of key list reads exactly the stored records (SQLite pads its IN
    list to a power of two with the last key: a padding key is never a second row)."""
    keys = [f"external_id=c{n}" for n in range(2100)]
    store.confirm(T, [confirmed(k, f"f{n}") for n, k in enumerate(keys) if n % 3])
    store.mark_in_flight(T, "run", keys[1:3])
    for size in (1, 2, 3, 5, 64, 511, 512, 513, 1999, 2000, 2001, 2100):
        asked = [*keys[:size], f"missing-{size}"]
        got = store.get_many(T, asked)
        assert sorted(got) == sorted(k for n, k in enumerate(keys[:size]) if n % 3)
        for key, record in got.items():
            assert record.key == key
            assert record.fingerprint == f"f{keys.index(key)}"
            assert record.in_flight is (key in keys[1:3])
            assert record.updated_at.tzinfo is datetime.UTC
    assert store.get_many(T, [keys[1]] * 7)[keys[1]].in_flight is True


def test_a_failing_look_up_is_a_state_error(store: StateStore) -> None:
    with store._engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE contactsync_records RENAME TO gone"))
    with pytest.raises(StateError, match="read records failed") as raised:
        store.get_many(T, ["external_id=secret-key"])
    assert "secret-key" not in str(raised.value)


def test_long_and_unicode_keys(store: StateStore) -> None:
    key = "first_name+email=zoë\x1f" + "x" * 2000 + "@example.com"
    store.confirm(T, [confirmed(key, remote_id="ид-1")])
    assert store.get_many(T, [key])[key].remote_id == "ид-1"


def test_runs_and_summary(store: StateStore) -> None:
    first = store.begin_run(T, mapping_fingerprint="m1")
    store.confirm(T, [confirmed("a"), confirmed("b", status="updated")])
    store.finish_run(first, {"created": 1, "updated": 1})
    second = store.begin_run(T, mapping_fingerprint="m2")
    assert second != first
    store.mark_in_flight(T, second, ["a", "c"])
    store.record_failure(T, [FailedEntry("d", "invalid_contact", status="rejected")])

    summary = store.summary(T)
    assert summary.tenant == T
    assert summary.records == 4
    assert summary.by_status == {"created": 1, "updated": 1, "rejected": 1, NEVER_CONFIRMED: 1}
    assert summary.in_flight == 2
    assert summary.mapping_fingerprint == "m2"
    assert summary.last_run is not None
    assert summary.last_run.run_id == second
    assert summary.last_run.finished_at is None  # still running, or killed
    assert summary.last_run.mapping_fingerprint == "m2"

    store.finish_run(second, {"failed": 0})
    last = store.summary(T).last_run
    assert last is not None
    assert last.counts == {"failed": 0}
    assert last.finished_at is not None
    assert last.started_at <= last.finished_at
    # A run without a mapping fingerprint leaves the tenant's as it was.
    store.begin_run(T)
    assert store.summary(T).mapping_fingerprint == "m2"


def test_finishing_an_unknown_run(store: StateStore) -> None:
    with pytest.raises(StateError, match="no run 'nope' to finish"):
        store.finish_run("nope", {})


def test_bad_tenant(store: StateStore) -> None:
    with pytest.raises(ValueError, match="tenant"):
        store.get_many("", ["k"])


def test_state_survives_reopening(url: str) -> None:
    with open_store(url) as store:
        run = store.begin_run(T, mapping_fingerprint="m1")
        store.mark_in_flight(T, run, ["a", "b"])
        store.confirm(T, [confirmed("a")])
    # A run killed here left "b" in flight.
    with open_store(url) as store:
        assert [r.key for r in store.in_flight(T)] == ["b"]
        assert store.get_many(T, ["a"])["a"].is_current("f1", "m1")
        assert store.summary(T).mapping_fingerprint == "m1"


def test_closed_store(url: str) -> None:
    store = open_store(url)
    store.close()
    store.close()
    with pytest.raises(StateError, match="closed"):
        store.get_many(T, ["k"])


def test_threads_share_a_store(store: StateStore) -> None:
    errors: list[BaseException] = []
    run = store.begin_run(T)

    def work(n: int) -> None:
        try:
            for round_ in range(10):
                keys = [f"t{n}-{j}" for j in range(20)] + [f"shared-{j}" for j in range(5)]
                store.mark_in_flight(T, run, keys)
                store.confirm(T, [confirmed(k, f"{n}:{round_}") for k in keys])
                got = store.get_many(T, keys)
                assert len(got) == len(keys)
                store.summary(T)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    summary = store.summary(T)
    assert summary.records == 8 * 20 + 5
    assert summary.in_flight == 0
    final = store.get_many(T, [f"t{n}-{j}" for n in range(8) for j in range(20)])
    assert all(r.fingerprint and r.fingerprint.endswith(":9") for r in final.values())


def test_the_store_is_not_picklable(store: StateStore) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(store)


def test_read_only(url: str) -> None:
    with open_store(url) as store:
        store.confirm(T, [confirmed("k")])
        store.finish_run(store.begin_run(T, mapping_fingerprint="m1"), {"created": 1})
    with open_store(url, read_only=True) as ro:
        assert ro.read_only
        assert ro.get_many(T, ["k"])["k"].fingerprint == "f1"
        assert ro.summary(T).records == 1
        assert ro.in_flight(T) == []
        calls: list[Callable[[], object]] = [
            lambda: ro.begin_run(T),
            lambda: ro.finish_run("x", {}),
            lambda: ro.mark_in_flight(T, "r", ["k"]),
            lambda: ro.confirm(T, [confirmed("k")]),
            lambda: ro.record_failure(T, [FailedEntry("k")]),
            lambda: ro.forget(T),
        ]
        for call in calls:
            with pytest.raises(ReadOnlyStore, match="opened read-only"):
                call()
    with open_store(url) as store:
        assert store.get_many(T, ["k"])["k"].fingerprint == "f1"


def test_read_only_never_writes_even_through_sql(url: str, backend: str) -> None:
    open_store(url).close()
    with open_store(url, read_only=True) as ro:
        engine = ro._engine  # the guard is in the connection too, not only in the API
        with pytest.raises(sa.exc.OperationalError if backend == "sqlite" else sa.exc.DBAPIError):  # noqa: SIM117
            with engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM contactsync_records"))


def test_sqlite_creates_the_folder(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    with open_store(f"sqlite:///{path}") as store:
        store.confirm(T, [confirmed("k")])
    assert path.is_file()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        with store._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert store.dialect == "sqlite"


def test_keys_of_a_remote_id(store: StateStore) -> None:
    store.confirm(
        T,
        [
            Confirmed("external_id=u1", "f1", "m1", "created", remote_id="g1"),
            Confirmed("email+first_name=j@example.com\x1fJohn", "f2", "m1", "updated", "g1"),
            Confirmed("external_id=u2", "f3", "m1", "created", remote_id="g2"),
        ],
        account="A",
    )
    store.confirm(
        "other", [Confirmed("external_id=u9", "f", "m1", "created", remote_id="g1")], account="A"
    )
    assert store.keys_of_remote_id(T, "A", "g1") == [
        "email+first_name=j@example.com\x1fJohn",
        "external_id=u1",
    ]  # in key order, this tenant's only
    assert store.keys_of_remote_id(T, "A", "g3") == []


def test_keys_of_a_remote_id_are_of_one_account(store: StateStore) -> None:
    # The same platform id in another account (or before accounts were recorded) names
    # another record there (rule 10): never answered for this account.
    store.confirm(T, [Confirmed("external_id=u1", "f1", "m1", "created", "g1")], account="A")
    store.confirm(T, [Confirmed("external_id=u7", "f7", "m1", "created", "g1")], account="B")
    store.confirm(T, [Confirmed("external_id=u8", "f8", "m1", "created", "g1")])
    assert store.keys_of_remote_id(T, "A", "g1") == ["external_id=u1"]
    assert store.keys_of_remote_id(T, "B", "g1") == ["external_id=u7"]
    assert store.keys_of_remote_id(T, None, "g1") == ["external_id=u8"]
    assert store.keys_of_remote_id(T, "C", "g1") == []
