"""The schema: created and versioned by the library, migrated forward, never back."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from contactsync._state import (
    SCHEMA_VERSION,
    Confirmed,
    StateSchemaError,
    StateStore,
    _schema,
    open_store,
)
from contactsync._state._url import parse


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(parse(url))


"""The versions a new store records: one row per migration applied."""


def versions(url: str) -> list[int]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT version FROM contactsync_schema")).scalars())
    finally:
        engine.dispose()


def test_schema_version_is_the_last_migration() -> None:
    assert _schema.MIGRATIONS[-1].version == SCHEMA_VERSION
    assert [m.version for m in _schema.MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))


ALL_VERSIONS = list(range(1, SCHEMA_VERSION + 1))


def test_a_new_store_gets_the_whole_schema(store: StateStore, url: str) -> None:
    assert versions(url) == ALL_VERSIONS
    engine = engine_for(url)
    try:
        inspector = sa.inspect(engine)
        tables = set(inspector.get_table_names())
        assert {
            "contactsync_schema",
            "contactsync_records",
            "contactsync_runs",
            "contactsync_tenants",
        } <= tables
        columns = {c["name"] for c in inspector.get_columns("contactsync_records")}
        assert columns == {
            "tenant",
            "key",
            "fingerprint",
            "mapping_fingerprint",
            "raw_hash",
            "remote_id",
            "last_status",
            "last_error_code",
            "in_flight",
            "run_id",
            "updated_at",
            "order_run",
            "order_index",
            "account",
            "coarse",
        }
        assert inspector.get_pk_constraint("contactsync_records")["constrained_columns"] == [
            "tenant",
            "key",
        ]
        indexes = {i["name"] for i in inspector.get_indexes("contactsync_records")}
        assert {
            "ix_contactsync_records_in_flight",
            "ix_contactsync_records_coarse",
            "ix_contactsync_records_remote_id",
        } <= indexes
        run_indexes = {i["name"] for i in inspector.get_indexes("contactsync_runs")}
        assert "ix_contactsync_runs_tenant_started" in run_indexes
    finally:
        engine.dispose()


def test_reopening_migrates_nothing(url: str) -> None:
    open_store(url).close()
    open_store(url).close()
    assert versions(url) == ALL_VERSIONS


def _add_nickname(conn: Connection) -> None:
    conn.execute(sa.text("ALTER TABLE contactsync_records ADD COLUMN nickname VARCHAR(20)"))


def test_an_older_schema_is_migrated(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(url) as store:
        store.confirm("t", [Confirmed("k", "f", "m", "created")])
    newer = (*_schema.MIGRATIONS, _schema.Migration(SCHEMA_VERSION + 1, "nickname", _add_nickname))
    monkeypatch.setattr(_schema, "MIGRATIONS", newer)

    # Read-only never migrates: it says what to do instead.
    with pytest.raises(StateSchemaError, match=r"older than .* needs .*open it once read-write"):
        open_store(url, read_only=True)
    assert versions(url) == ALL_VERSIONS

    with open_store(url) as store:
        assert store.get_many("t", ["k"])["k"].fingerprint == "f"
    assert versions(url) == [*ALL_VERSIONS, SCHEMA_VERSION + 1]
    engine = engine_for(url)
    try:
        columns = {c["name"] for c in sa.inspect(engine).get_columns("contactsync_records")}
    finally:
        engine.dispose()
    assert "nickname" in columns
    open_store(url, read_only=True).close()


def test_a_failed_migration_changes_nothing(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    open_store(url).close()

    def broken(conn: Connection) -> None:
        _add_nickname(conn)
        raise RuntimeError("migration bug")

    newer = (*_schema.MIGRATIONS, _schema.Migration(SCHEMA_VERSION + 1, "broken", broken))
    monkeypatch.setattr(_schema, "MIGRATIONS", newer)
    with pytest.raises(RuntimeError, match="migration bug"):
        open_store(url)
    monkeypatch.undo()
    assert versions(url) == ALL_VERSIONS
    engine = engine_for(url)
    try:
        columns = {c["name"] for c in sa.inspect(engine).get_columns("contactsync_records")}
    finally:
        engine.dispose()
    assert "nickname" not in columns  # the DDL was rolled back with the version row


def test_a_newer_schema_is_refused(url: str) -> None:
    open_store(url).close()
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                _schema.schema_table.insert().values(
                    version=SCHEMA_VERSION + 5,
                    description="from the future",
                    applied_at=datetime.datetime.now(datetime.UTC),
                )
            )
    finally:
        engine.dispose()
    for read_only in (False, True):
        with pytest.raises(
            StateSchemaError,
            match=rf"schema version {SCHEMA_VERSION + 5} is newer .* upgrade contactsync",
        ):
            open_store(url, read_only=read_only)
    assert versions(url) == [*ALL_VERSIONS, SCHEMA_VERSION + 5]


def test_read_only_needs_a_schema(url_factory: Callable[[], str], backend: str) -> None:
    url = url_factory()
    message = "no state store (file|schema) here; open it once read-write"
    with pytest.raises(StateSchemaError, match=message):
        open_store(url, read_only=True)
    if backend == "sqlite":
        assert not Path(str(parse(url).database)).exists()  # never created by it


def test_read_only_on_an_empty_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(StateSchemaError, match="no state store schema here"):
        open_store(f"sqlite:///{path}", read_only=True)
    assert path.stat().st_size == 0


def test_opening_a_new_store_at_once(url_factory: Callable[[], str]) -> None:
    # Eight openers race to create one new store. A new SQLite file has to be switched
    # to WAL first, which answers "locked" at once to every loser of that race (seen
    # in about one round in thirty), so the race is run many times; it is cheap there.
    rounds = 60 if url_factory().startswith("sqlite") else 3
    for _ in range(rounds):
        url = url_factory()
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def open_it(
            url: str = url, start: threading.Barrier = start, errors: list[BaseException] = errors
        ) -> None:
            try:
                start.wait()
                open_store(url).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert versions(url) == ALL_VERSIONS


def test_a_version_1_store_is_migrated_to_run_order(url: str) -> None:
    """A store made by version 1 (no run sequence, no order of confirmed data) keeps its
    records; they carry no order, and runs begun after the migration are numbered."""
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            _schema.migrate(conn, url, _schema.MIGRATIONS[:1])
        with engine.connect() as conn:
            old = {c["name"] for c in sa.inspect(conn).get_columns("contactsync_records")}
        assert "order_run" not in old
    finally:
        engine.dispose()
    with open_store(url) as store:
        store.confirm("t", [Confirmed("k", "f", "m", "created")])
        first = store.begin_ordered_run("t")[1]
        second = store.begin_ordered_run("t")[1]
        assert 0 < first < second
        assert store.get_many("t", ["k"])["k"].order_run is None
        store.confirm("t", [Confirmed("k", "f", "m", "updated", order=(second, 7))])
        record = store.get_many("t", ["k"])["k"]
        assert (record.order_run, record.order_index) == (second, 7)
        assert record.newer_than((first, 9))
        assert not record.newer_than((second, 8))
        # A confirm without an order (an unchanged contact's refresh) keeps the stored one.
        store.confirm("t", [Confirmed("k", "f", "m", "unchanged")])
        assert store.get_many("t", ["k"])["k"].order_index == 7
    assert versions(url) == ALL_VERSIONS


def test_a_version_1_store_gets_per_account_records(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store as version 1 left it (now that version 1 builds exactly its own shape:
    # no order, no account columns), with one record holding a remote id.
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            _schema.migrate(conn, url, _schema.MIGRATIONS[:1])
            conn.execute(
                sa.text(
                    "INSERT INTO contactsync_records (tenant, key, fingerprint, "
                    "mapping_fingerprint, remote_id, last_status, in_flight, updated_at) "
                    "VALUES ('t', 'k', 'f', 'm', '17', 'created', false, '2026-01-01 00:00:00')"
                )
            )
        with engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("contactsync_records")}
        assert "account" not in columns
    finally:
        engine.dispose()
    assert versions(url) == [1]
    with open_store(url) as store:
        record = store.get_many("t", ["k"])["k"]
        assert (record.remote_id, record.account) == ("17", None)  # of no known account
        assert store.accounts("t") == {None: 1}
        assert store.tenant_account("t").account is None
    assert versions(url) == ALL_VERSIONS
