"""The state store on SQLAlchemy Core: one code path for SQLite and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transaction survives
the process being killed at any moment (only a power loss or OS crash can lose the
last transactions, never tear one). Write transactions start with ``BEGIN IMMEDIATE``
so two writers queue on the busy timeout instead of failing half way; readers never
block writers. PostgreSQL runs at READ COMMITTED; every write is an upsert
(``INSERT … ON CONFLICT DO UPDATE``) over rows sorted by key, so concurrent writers
of the same identities neither fail, deadlock nor tear a row.

The store is safe to share between threads: each call checks a connection out of the
engine's pool for the length of one small transaction.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Dialect, Engine

from . import _schema
from ._coarse import coarse_key
from ._errors import ReadOnlyStore, StateError, StateSchemaError
from ._lock import AdvisoryLock, FileLock, TenantLock, refuse_hard_links
from ._schema import RUN_SEQUENCE, records, runs, sequences, tenants, utc_from_db
from ._types import (
    CONFIRMED_STATUSES,
    NEVER_CONFIRMED,
    UNCONFIRMED_STATUSES,
    Confirmed,
    FailedEntry,
    RunInfo,
    StateRecord,
    StateSummary,
    TenantAccount,
    check_status,
)
from ._url import masked, parse, scrub

_CHUNK: Final = 2000
"""Keys per ``IN (…)`` list: far below SQLite's 32,766 and PostgreSQL's 65,535
parameters, so 1,000 keys are one query."""
_BUSY_TIMEOUT: Final = 30.0
"""Seconds a SQLite writer waits for another one to commit."""
_POOL_SIZE: Final = 5
_MAX_OVERFLOW: Final = 10
_WRITE: Final = "contactsync_write"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _describe(exc: BaseException) -> str:
    """The driver's first line about ``exc``: never the SQL, the parameters, nor
    the driver's detail lines (which may quote identity keys)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        inner: BaseException = exc.orig
    else:
        inner = exc
    text = str(inner).strip().splitlines()
    return f"{type(inner).__name__}: {text[0] if text else ''}".rstrip(": ")


def _check_tenant(tenant: str) -> None:
    if not isinstance(tenant, str) or not tenant:
        raise ValueError("tenant must be a non-empty string")


def _sqlite_engine(url: URL, read_only: bool) -> Engine:
    path = Path(url.database or "")
    if read_only:
        if not path.is_file():
            raise StateSchemaError(
                f"{masked(url)}: no state store file here; open it once read-write "
                "(a sync run) to create it"
            )
        target = f"file:{quote(str(path.resolve()))}?mode=ro"
    else:
        refuse_hard_links(path)  # one name per database (see the tenant lock)
        path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path)

    def connect() -> sqlite3.Connection:
        # isolation_level=None: the driver never opens transactions by itself; the
        # ``begin`` hook below does, so DDL is transactional too.
        return sqlite3.connect(
            target,
            uri=read_only,
            timeout=_BUSY_TIMEOUT,
            check_same_thread=False,
            isolation_level=None,
        )

    engine = sa.create_engine(
        "sqlite+pysqlite://",
        creator=connect,
        poolclass=sa.QueuePool,
        pool_size=_POOL_SIZE,
        max_overflow=_MAX_OVERFLOW,
        hide_parameters=True,
    )

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, record: object) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if not read_only:
                _enter_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT * 1000)}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _enter_wal(cursor: sqlite3.Cursor) -> None:
    # Switching a brand-new file to WAL needs an exclusive lock, and SQLite answers
    # "database is locked" at once (its busy handler is not consulted) while another
    # connection is doing the same. Once one of them succeeds the mode is persistent
    # and the pragma is a plain read, so waiting a little and asking again is enough.
    deadline = time.monotonic() + _BUSY_TIMEOUT
    delay = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _postgresql_engine(url: URL, read_only: bool) -> Engine:
    connect_args: dict[str, Any] = {"connect_timeout": 10, "application_name": "contactsync"}
    if read_only:
        connect_args["options"] = "-c default_transaction_read_only=on"
    return sa.create_engine(
        url,
        pool_size=_POOL_SIZE,
        max_overflow=_MAX_OVERFLOW,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args=connect_args,
    )


def open_store(url: str, *, read_only: bool = False) -> StateStore:
    """Open (and, unless ``read_only``, create or migrate) the store at ``url``.

    ``sqlite:///path/state.db`` (the file and its folder are created) or
    ``postgresql://user:password@host/db``. A read-only store never creates nor
    migrates anything and raises :class:`StateSchemaError` when the schema is missing
    or not the current one; its write methods raise :class:`ReadOnlyStore`.
    """
    parsed = parse(url)
    where = masked(parsed)
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = _sqlite_engine(parsed, read_only)
        else:
            engine = _postgresql_engine(parsed, read_only)
    except StateError:
        raise
    except (OSError, sa_exc.SQLAlchemyError, ImportError) as exc:
        raise StateError(f"{where}: cannot open: {scrub(_describe(exc), parsed)}") from None
    return StateStore(engine, parsed, read_only=read_only)


class StateStore:
    """Per tenant and identity key: what was last confirmed written, and how it went.

    Made by :func:`open_store`. Every method is one small transaction and may be
    called from any thread.
    """

    def __init__(self, engine: Engine, url: URL, *, read_only: bool) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{_WRITE: True})
        self._url = url
        self._where = masked(url)
        self._read_only = read_only
        self._closed = False
        self._upsert: Callable[[sa.Table], Any] = (
            postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        )
        self._statements = _Statements(engine.dialect.name, self._upsert)
        self._timestamp_type = _schema.UtcDateTime()
        try:
            with self._guard("open"):
                if read_only:
                    with engine.connect() as conn:
                        _schema.check_readable(conn, self._where)
                else:
                    with self._write_engine.begin() as conn:
                        _schema.migrate(conn, self._where)
        except BaseException:
            engine.dispose()
            raise

    # -- plumbing -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The store's URL, password masked."""
        return self._where

    @property
    def read_only(self) -> bool:
        return self._read_only

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return str(self._engine.dialect.name)

    def __repr__(self) -> str:
        return f"StateStore({self._where!r}, read_only={self._read_only})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a state store cannot be pickled: open it again in the other process")

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except StateError:
            raise
        except sa_exc.SQLAlchemyError as exc:
            message = scrub(_describe(exc), self._url)
            raise StateError(f"{self._where}: {action} failed: {message}") from None

    @contextlib.contextmanager
    def _reading(self, action: str) -> Iterator[Connection]:
        self._check_open()
        with self._guard(action), self._engine.begin() as conn:
            yield conn

    @contextlib.contextmanager
    def _writing(self, action: str) -> Iterator[Connection]:
        self._check_open()
        if self._read_only:
            raise ReadOnlyStore(f"{self._where}: opened read-only, cannot {action}")
        with self._guard(action), self._write_engine.begin() as conn:
            yield conn

    def _timestamp(self) -> Any:
        """Now, as the driver takes it for ``updated_at`` (for :class:`_Batch` rows)."""
        return self._timestamp_type.process_bind_param(_now(), self._engine.dialect)

    def _check_open(self) -> None:
        if self._closed:
            raise StateError(f"{self._where}: the store is closed")

    def close(self) -> None:
        """Close every pooled connection. Idempotent."""
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    # -- runs -----------------------------------------------------------------------

    def begin_run(
        self, tenant: str, *, mapping_fingerprint: str | None = None, run_id: str | None = None
    ) -> str:
        """Record the start of a run and return its id (``run_id``, or a new one: a
        run that took the tenant lock first names itself there). ``mapping_fingerprint``,
        when given, becomes the tenant's current mapping fingerprint."""
        return self.begin_ordered_run(
            tenant, mapping_fingerprint=mapping_fingerprint, run_id=run_id
        )[0]

    def begin_ordered_run(
        self, tenant: str, *, mapping_fingerprint: str | None = None, run_id: str | None = None
    ) -> tuple[str, int]:
        """:meth:`begin_run`, and the run's sequence number: greater than that of every
        run begun on this store before (a counter in the store, taken in the write
        transaction: clocks of several hosts cannot disagree about it)."""
        _check_tenant(tenant)
        run_id = run_id or uuid.uuid4().hex
        now = _now()
        with self._writing("begin a run") as conn:
            # The UPDATE takes the row's lock (PostgreSQL) or the write lock (SQLite's
            # BEGIN IMMEDIATE) first: two runs never read the same value.
            conn.execute(
                sequences.update()
                .where(sequences.c.name == RUN_SEQUENCE)
                .values(value=sequences.c.value + 1)
            )
            seq = int(
                conn.execute(
                    sa.select(sequences.c.value).where(sequences.c.name == RUN_SEQUENCE)
                ).scalar_one()
            )
            conn.execute(
                runs.insert().values(
                    run_id=run_id,
                    tenant=tenant,
                    started_at=now,
                    mapping_fingerprint=mapping_fingerprint,
                    seq=seq,
                )
            )
            if mapping_fingerprint is not None:
                stmt = self._upsert(tenants).values(
                    tenant=tenant, mapping_fingerprint=mapping_fingerprint, updated_at=now
                )
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[tenants.c.tenant],
                        set_={
                            "mapping_fingerprint": stmt.excluded.mapping_fingerprint,
                            "updated_at": stmt.excluded.updated_at,
                        },
                    )
                )
        return run_id, seq

    def finish_run(self, run_id: str, counts: Mapping[str, int]) -> None:
        """Record the end of a run and its counts (outcomes by status, requests…)."""
        payload = {str(k): int(v) for k, v in counts.items()}
        with self._writing("finish a run") as conn:
            result = conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(finished_at=_now(), counts=json.dumps(payload, sort_keys=True))
            )
            if result.rowcount == 0:
                raise StateError(f"{self._where}: no run {run_id!r} to finish")

    # -- records --------------------------------------------------------------------

    def get_many(self, tenant: str, keys: Sequence[str]) -> dict[str, StateRecord]:
        """The records of those ``keys`` the store has (absent keys are left out).
        One query per 2,000 keys, all in one read transaction."""
        _check_tenant(tenant)
        wanted = list(dict.fromkeys(keys))
        found: dict[str, StateRecord] = {}
        if not wanted:
            return found
        lookup = self._statements.get_many
        make = tuple.__new__
        utc = utc_from_db
        with self._reading("read records") as conn:
            for start in range(0, len(wanted), _CHUNK):
                rows = lookup.rows(conn, tenant, wanted[start : start + _CHUNK])
                for (
                    t,
                    key,
                    fp,
                    mapping,
                    raw,
                    remote,
                    status,
                    code,
                    flying,
                    run,
                    at,
                    order_run,
                    order_index,
                    acc,
                ) in rows:
                    found[key] = make(
                        StateRecord,
                        (
                            t,
                            key,
                            fp,
                            mapping,
                            raw,
                            remote,
                            status,
                            code,
                            bool(flying),
                            run,
                            utc(at),
                            order_run,
                            order_index,
                            acc,
                        ),
                    )
        return found

    def keys_of_remote_id(self, tenant: str, account: str | None, remote_id: str) -> list[str]:
        """The keys of ``account`` (``None``: records of no recorded account) whose
        confirmed platform id is ``remote_id``, in key order (a provider asks before
        writing to a record it found by another key). Another account's ids name other
        records (rule 10), so they are never looked at."""
        _check_tenant(tenant)
        owner = records.c.account.is_(None) if account is None else records.c.account == account
        with self._reading("read records by platform id") as conn:
            rows = conn.execute(
                sa.select(records.c.key)
                .where(records.c.tenant == tenant, owner, records.c.remote_id == remote_id)
                .order_by(records.c.key)
            )
            return [str(row[0]) for row in rows]

    def mark_in_flight(
        self,
        tenant: str,
        run_id: str,
        keys: Sequence[str],
        *,
        account: str | None = None,
        orders: Sequence[tuple[int, int] | None] | None = None,
    ) -> None:
        """Mark ``keys`` as being sent by ``run_id`` (call before sending). Identities
        the store does not know yet get a record with no fingerprint and no status
        (of ``account``; a known record keeps its account until a confirm).

        ``orders`` (one per key, aligned with ``keys``) are the orders of the rows
        being sent. A record's order becomes the newer of its own and the sent row's,
        before the answer is known: a write whose answer is lost, or whose run is
        killed, may have been applied, and a row replayed later from an older
        ``--failed`` file must not be written over it."""
        _check_tenant(tenant)
        newest: dict[str, tuple[int, int] | None] = {}
        for n, key in enumerate(keys):
            order = orders[n] if orders is not None else None
            before = newest.get(key)
            newest[key] = (
                order if before is None or (order is not None and order > before) else before
            )
        wanted = sorted(newest)
        if not wanted:
            return
        now = self._timestamp()
        rows = [
            (
                tenant,
                key,
                True,
                run_id,
                now,
                account,
                coarse_key(key),
                *(newest[key] or (None, None)),
            )
            for key in wanted
        ]
        with self._writing("mark records in flight") as conn:
            self._statements.mark_in_flight.run(conn, rows)

    def confirm(
        self, tenant: str, entries: Sequence[Confirmed], *, account: str | None = None
    ) -> None:
        """Record what the platform confirmed, all entries in one transaction, and
        clear their in-flight markers. A key given twice keeps its last entry.

        The records then belong to ``account``. An entry without a remote id keeps the
        stored one only when the record already belonged to that account: an id of
        another account is never carried over."""
        _check_tenant(tenant)
        latest = {entry.key: entry for entry in entries}
        if not latest:
            return
        now = self._timestamp()
        rows = [
            (
                tenant,
                key,
                e.fingerprint,
                e.mapping_fingerprint,
                e.raw_hash,
                e.remote_id,
                check_status(e.status, CONFIRMED_STATUSES, "a confirmed"),
                None,
                False,
                now,
                None if e.order is None else e.order[0],
                None if e.order is None else e.order[1],
                account,
                coarse_key(key),
            )
            for key, e in sorted(latest.items())
        ]
        with self._writing("confirm records") as conn:
            self._statements.confirm.run(conn, rows)
            self._outlive(conn, tenant, account, entries)

    @staticmethod
    def _outlive(
        conn: Connection, tenant: str, account: str | None, entries: Sequence[Confirmed]
    ) -> None:
        """A write confirmed under one key may have landed on the record another key of
        the account was confirmed at (the platform matched it on something coarser than
        the exact key): those other keys lose their confirmation (fingerprint and raw
        hash, never their remote id or order), so that a later row under them is sent
        again instead of being called ``unchanged`` while the record holds other data.
        The record is the remote id the write confirmed, else (no id known) every key
        with the same coarse key (:func:`~._coarse.coarse_key`). Within ``entries`` the
        latest write of each record (by order, then position) keeps its confirmation."""
        winners: dict[tuple[str, str], tuple[tuple[int, int, int], Confirmed]] = {}
        for position, entry in enumerate(entries):
            if entry.status == "unchanged":
                continue  # a refresh of what was judged current: no write happened
            group = (
                ("id", entry.remote_id)
                if entry.remote_id is not None
                else ("coarse", coarse_key(entry.key))
            )
            rank = (*(entry.order or (-1, -1)), position)
            held = winners.get(group)
            if held is None or rank > held[0]:
                winners[group] = (rank, entry)
        if not winners:
            return
        # One read finds the other keys of those records that hold a confirmation (most
        # records have none), and one write ends theirs: a statement per entry would
        # double what a confirm costs.
        by_id = {group: entry.key for (how, group), (_, entry) in winners.items() if how == "id"}
        by_coarse = {g: entry.key for (how, g), (_, entry) in winners.items() if how == "coarse"}
        stale: set[str] = set()
        for column, wanted in ((records.c.remote_id, by_id), (records.c.coarse, by_coarse)):
            groups = sorted(wanted)
            for start in range(0, len(groups), _CHUNK):
                rows = conn.execute(
                    sa.select(records.c.key, column).where(
                        records.c.tenant == tenant,
                        records.c.account.is_not_distinct_from(account),
                        column.in_(groups[start : start + _CHUNK]),
                        records.c.fingerprint.is_not(None),
                    )
                ).all()
                stale.update(key for key, group in rows if key != wanted[group])
        keys = sorted(stale)
        for start in range(0, len(keys), _CHUNK):
            conn.execute(
                records.update()
                .where(records.c.tenant == tenant, records.c.key.in_(keys[start : start + _CHUNK]))
                .values(fingerprint=None, raw_hash=None)
            )

    def ids_by_coarse(
        self, tenant: str, account: str | None, keys: Sequence[str]
    ) -> dict[str, str]:
        """Per key of ``keys`` the store does not hold: the platform id of ``account``'s
        most recently written record under another key with the same coarse key (the
        record the platform may hold for both: ``Ann@`` and ``ann@``)."""
        _check_tenant(tenant)
        wanted = {key: coarse_key(key) for key in keys}
        coarse = sorted(set(wanted.values()))
        latest: dict[str, tuple[Any, str, str]] = {}
        if not coarse:
            return {}
        with self._reading("read ids by coarse key") as conn:
            for start in range(0, len(coarse), _CHUNK):
                rows = conn.execute(
                    sa.select(
                        records.c.coarse, records.c.key, records.c.remote_id, records.c.updated_at
                    ).where(
                        records.c.tenant == tenant,
                        records.c.account.is_not_distinct_from(account),
                        records.c.coarse.in_(coarse[start : start + _CHUNK]),
                        records.c.remote_id.is_not(None),
                    )
                ).all()
                for group, key, remote_id, at in rows:
                    held = latest.get(group)
                    if held is None or (at, key) > (held[0], held[1]):
                        latest[group] = (at, key, str(remote_id))
        return {
            key: latest[group][2]
            for key, group in wanted.items()
            if group in latest and latest[group][1] != key
        }

    def newest_orders(
        self, tenant: str, account: str | None, keys: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """Per key of ``keys``: the newest order confirmed under any key of ``account``
        with the same coarse key (a row replayed from ``--failed`` older than it would
        put older data on the record the platform may hold for both)."""
        _check_tenant(tenant)
        wanted = {key: coarse_key(key) for key in keys}
        coarse = sorted(set(wanted.values()))
        newest: dict[str, tuple[int, int]] = {}
        if not coarse:
            return newest
        with self._reading("read the newest orders") as conn:
            for start in range(0, len(coarse), _CHUNK):
                part = coarse[start : start + _CHUNK]
                rows = conn.execute(
                    sa.select(records.c.coarse, records.c.order_run, records.c.order_index).where(
                        records.c.tenant == tenant,
                        records.c.account.is_not_distinct_from(account),
                        records.c.coarse.in_(part),
                        records.c.order_run.is_not(None),
                        records.c.order_index.is_not(None),
                    )
                ).all()
                for group, run, index in rows:
                    order = (int(run), int(index))
                    if order > newest.get(group, (-1, -1)):
                        newest[group] = order
        return {key: newest[group] for key, group in wanted.items() if group in newest}

    def record_failure(self, tenant: str, entries: Sequence[FailedEntry]) -> None:
        """Record identities whose write was not confirmed (failed, rejected, skipped),
        keeping what was last confirmed, and clear their in-flight markers."""
        _check_tenant(tenant)
        latest = {entry.key: entry for entry in entries}
        if not latest:
            return
        now = self._timestamp()
        rows = [
            (
                tenant,
                key,
                check_status(e.status, UNCONFIRMED_STATUSES, "a failed"),
                e.error_code,
                False,
                now,
            )
            for key, e in sorted(latest.items())
        ]
        with self._writing("record failures") as conn:
            self._statements.record_failure.run(conn, rows)

    def in_flight(self, tenant: str) -> list[StateRecord]:
        """Records still marked in flight: left by a run that was killed (or is still
        running), in key order."""
        _check_tenant(tenant)
        with self._reading("read in-flight records") as conn:
            rows = conn.execute(
                sa.select(*_RECORD_COLUMNS)
                .where(records.c.tenant == tenant, records.c.in_flight)
                .order_by(records.c.key)
            )
            return [StateRecord._make(row) for row in rows]

    def summary(self, tenant: str) -> StateSummary:
        """Counts by last status, in-flight markers, mapping fingerprint, last run."""
        _check_tenant(tenant)
        with self._reading("summarize") as conn:
            by_status: dict[str, int] = {}
            in_flight = 0
            status_rows = conn.execute(
                sa.select(
                    records.c.last_status,
                    sa.func.count(),
                    sa.func.sum(sa.case((records.c.in_flight, 1), else_=0)),
                )
                .where(records.c.tenant == tenant)
                .group_by(records.c.last_status)
            )
            for status, count, flying in status_rows:
                by_status[status or NEVER_CONFIRMED] = int(count)
                in_flight += int(flying or 0)
            mapping = conn.execute(
                sa.select(tenants.c.mapping_fingerprint).where(tenants.c.tenant == tenant)
            ).scalar()
            last = conn.execute(
                sa.select(runs)
                .where(runs.c.tenant == tenant)
                .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
                .limit(1)
            ).first()
        return StateSummary(
            tenant=tenant,
            records=sum(by_status.values()),
            by_status=by_status,
            in_flight=in_flight,
            mapping_fingerprint=mapping,
            last_run=None if last is None else _run(last),
        )

    def forget(self, tenant: str) -> int:
        """Delete everything the store holds about ``tenant``; returns the number of
        records deleted. The next run sends every contact again."""
        _check_tenant(tenant)
        with self._writing("forget a tenant") as conn:
            deleted = conn.execute(records.delete().where(records.c.tenant == tenant)).rowcount
            conn.execute(runs.delete().where(runs.c.tenant == tenant))
            conn.execute(tenants.delete().where(tenants.c.tenant == tenant))
        return int(deleted)

    # -- accounts -------------------------------------------------------------------

    def tenant_account(self, tenant: str) -> TenantAccount:
        """The account of ``tenant``'s last run, its name then, and the tenant's
        current mapping fingerprint (all ``None`` for a tenant never run)."""
        _check_tenant(tenant)
        with self._reading("read the tenant's account") as conn:
            row = conn.execute(
                sa.select(
                    tenants.c.account, tenants.c.account_name, tenants.c.mapping_fingerprint
                ).where(tenants.c.tenant == tenant)
            ).first()
        return TenantAccount(*row) if row is not None else TenantAccount(None, None, None)

    def set_tenant_account(
        self,
        tenant: str,
        account: str,
        name: str | None,
        *,
        adopt_from: tuple[str | None, ...] = (),
    ) -> int:
        """Record that ``tenant`` now runs against ``account`` (named ``name``). The
        records of each account in ``adopt_from`` (``None``: records written before
        accounts were recorded) become ``account``'s, in the same transaction: only
        for an account proven to be the same one. Returns the records adopted."""
        _check_tenant(tenant)
        now = _now()
        adopted = 0
        with self._writing("record the tenant's account") as conn:
            for old in adopt_from:
                where = records.c.account.is_(None) if old is None else records.c.account == old
                adopted += int(
                    conn.execute(
                        records.update()
                        .where(records.c.tenant == tenant, where)
                        .values(account=account)
                    ).rowcount
                )
            stmt = self._upsert(tenants).values(
                tenant=tenant, account=account, account_name=name, updated_at=now
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[tenants.c.tenant],
                    set_={
                        "account": stmt.excluded.account,
                        "account_name": stmt.excluded.account_name,
                        "updated_at": stmt.excluded.updated_at,
                    },
                )
            )
        return adopted

    def accounts(self, tenant: str) -> dict[str | None, int]:
        """Records of ``tenant`` per account (``None``: of no recorded account)."""
        _check_tenant(tenant)
        with self._reading("count records per account") as conn:
            rows = conn.execute(
                sa.select(records.c.account, sa.func.count())
                .where(records.c.tenant == tenant)
                .group_by(records.c.account)
            )
            return {account: int(count) for account, count in rows}

    def sample_known(
        self, tenant: str, account: str | None, *, prefix: str = "external_id="
    ) -> StateRecord | None:
        """One record of ``account`` (``None``: of no recorded account) whose write was
        confirmed with a remote id, keyed ``prefix…``: what a read-back can check."""
        _check_tenant(tenant)
        owner = records.c.account.is_(None) if account is None else records.c.account == account
        with self._reading("read a known record") as conn:
            row = conn.execute(
                sa.select(*_RECORD_COLUMNS)
                .where(
                    records.c.tenant == tenant,
                    owner,
                    records.c.remote_id.is_not(None),
                    records.c.last_status.in_(sorted(CONFIRMED_STATUSES)),
                    records.c.key.startswith(prefix, autoescape=True),
                )
                .order_by(records.c.updated_at.desc(), records.c.key)
                .limit(1)
            ).first()
        return None if row is None else StateRecord._make(row)

    # -- the tenant lock --------------------------------------------------------------

    def tenant_lock(self, tenant: str) -> TenantLock:
        """The lock one run of ``tenant`` holds on this store (see :mod:`._lock`)."""
        _check_tenant(tenant)
        self._check_open()
        if self.dialect == "sqlite":
            return FileLock(Path(self._url.database or ""), tenant)
        return AdvisoryLock(self._url, tenant, self._where)


_RECORD_COLUMNS: Final = tuple(records.c[name] for name in StateRecord._fields)
"""The record columns in :class:`StateRecord`'s field order."""


class _Batch:
    """One upsert run with ``executemany`` over rows of plain tuples.

    Defined once in SQLAlchemy Core and compiled once per dialect, then executed
    through :meth:`Connection.exec_driver_sql`: SQLAlchemy's per-row parameter
    processing costs several times the statement itself for 1,000 rows. Rows must
    hold driver-ready values (see :func:`_schema.UtcDateTime.process_bind_param`).
    """

    def __init__(self, statement: Any, columns: Sequence[str]) -> None:
        self.statement = statement
        self.columns = tuple(columns)
        self._compiled: dict[str, tuple[str, Callable[[tuple[Any, ...]], Any]]] = {}

    def _compile(self, dialect: Dialect) -> tuple[str, Callable[[tuple[Any, ...]], Any]]:
        compiled = self.statement.compile(dialect=dialect, column_keys=list(self.columns))
        names = list(compiled.positiontup or compiled.binds)
        if sorted(names) != sorted(self.columns):  # a literal became a parameter
            raise AssertionError(f"unexpected parameters {names} in a batch statement")
        convert: Callable[[tuple[Any, ...]], Any]
        if compiled.positional:
            order = [self.columns.index(name) for name in names]
            if order == list(range(len(order))):
                convert = tuple
            else:
                convert = lambda row: tuple(row[i] for i in order)  # noqa: E731
        else:
            columns = self.columns
            convert = lambda row: dict(zip(columns, row, strict=True))  # noqa: E731
        return str(compiled), convert

    def run(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        dialect = conn.dialect
        if dialect.name not in self._compiled:
            self._compiled[dialect.name] = self._compile(dialect)
        sql, convert = self._compiled[dialect.name]
        params = list(rows) if convert is tuple else [convert(row) for row in rows]
        conn.exec_driver_sql(sql, params)


_MARK_COLUMNS: Final = (
    "tenant",
    "key",
    "in_flight",
    "run_id",
    "updated_at",
    "account",
    "coarse",
    "order_run",
    "order_index",
)
_CONFIRM_COLUMNS: Final = (
    "tenant",
    "key",
    "fingerprint",
    "mapping_fingerprint",
    "raw_hash",
    "remote_id",
    "last_status",
    "last_error_code",
    "in_flight",
    "updated_at",
    "order_run",
    "order_index",
    "account",
    "coarse",
)
_FAILURE_COLUMNS: Final = (
    "tenant",
    "key",
    "last_status",
    "last_error_code",
    "in_flight",
    "updated_at",
)


class _Lookup:
    """:meth:`StateStore.get_many`'s query, defined once in SQLAlchemy Core, compiled
    once per dialect (and, on SQLite, per size of its ``IN`` list), and run on the
    connection's DB-API cursor: SQLAlchemy's expansion of an ``IN`` parameter, its
    result rows and their per-row processing cost more than the query itself. Rows
    come back as the driver gives them, in :class:`StateRecord`'s field order
    (``get_many`` converts ``in_flight`` and ``updated_at``); a driver error is raised
    as SQLAlchemy raises it.

    PostgreSQL takes the keys as one array parameter (1,000 separate ones cost it 4
    times more). On SQLite a list of ``n`` keys is padded (with its last key again, which
    changes no answer) to the next power of two up to :data:`_CHUNK`, so a handful of
    statements serve every size and stay in the driver's prepared-statement cache.
    """

    def __init__(self, dialect: str) -> None:
        self.array = dialect == "postgresql"
        self._compiled: dict[tuple[str, int], tuple[str, bool]] = {}

    @staticmethod
    def _statement(size: int, array: bool) -> Any:
        keys: Any
        if array:
            keys = records.c.key == sa.any_(sa.bindparam("keys", type_=postgresql.ARRAY(sa.Text)))
        else:
            keys = records.c.key.in_([sa.bindparam(f"k{i}") for i in range(size)])
        return sa.select(*_RECORD_COLUMNS).where(records.c.tenant == sa.bindparam("tenant"), keys)

    def _compile(self, dialect: Dialect, size: int) -> tuple[str, bool]:
        compiled = self._statement(size, self.array).compile(dialect=dialect)
        names = ["tenant", "keys"] if self.array else ["tenant", *(f"k{i}" for i in range(size))]
        if list(compiled.positiontup or compiled.binds) != names:
            raise AssertionError(f"unexpected parameters in the look-up: {compiled.binds}")
        return str(compiled), compiled.positional

    def rows(self, conn: Connection, tenant: str, keys: list[str]) -> Sequence[Sequence[Any]]:
        """The rows of ``keys`` (at most :data:`_CHUNK`, no duplicates) present for ``tenant``."""
        size = 0 if self.array else min(1 << (len(keys) - 1).bit_length(), _CHUNK)
        slot = (conn.dialect.name, size)
        if slot not in self._compiled:
            self._compiled[slot] = self._compile(conn.dialect, size)
        sql, positional = self._compiled[slot]
        params: Any
        if self.array:
            params = {"tenant": tenant, "keys": keys}
        else:
            padded = [tenant, *keys]
            padded += [keys[-1]] * (size - len(keys))
            params = (
                tuple(padded)
                if positional
                else dict(zip(["tenant", *(f"k{i}" for i in range(size))], padded, strict=True))
            )
        dbapi = conn.dialect.loaded_dbapi
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, params)
            rows: Sequence[Sequence[Any]] = cursor.fetchall()
        except dbapi.Error as exc:  # as SQLAlchemy would raise it (the store reports those)
            raise sa_exc.DBAPIError.instance(
                sql, None, exc, dbapi.Error, hide_parameters=True, dialect=conn.dialect
            ) from exc
        finally:
            cursor.close()
        return rows


class _Statements:
    """The hot statements, built once per store: building an upsert or a 1,000-value
    ``IN`` costs more than running it."""

    def __init__(self, dialect: str, upsert: Callable[[sa.Table], Any]) -> None:
        self.get_many = _Lookup(dialect)

        def on_conflict(
            changes: Callable[[Any], dict[str, Any]], columns: tuple[str, ...]
        ) -> _Batch:
            """An upsert of one record per row that, for a key already stored, sets
            ``changes(excluded)`` (``excluded``: the row that was refused)."""
            stmt = upsert(records)
            return _Batch(
                stmt.on_conflict_do_update(
                    index_elements=[records.c.tenant, records.c.key],
                    set_=changes(stmt.excluded),
                ),
                columns,
            )

        def later(new: Any) -> sa.ColumnElement[bool]:
            """Whether the sent row's order is after the record's."""
            return sa.and_(
                new.order_run.is_not(None),
                sa.or_(
                    records.c.order_run.is_(None),
                    new.order_run > records.c.order_run,
                    sa.and_(
                        new.order_run == records.c.order_run,
                        new.order_index > records.c.order_index,
                    ),
                ),
            )

        self.mark_in_flight = on_conflict(
            lambda new: {
                "in_flight": sa.true(),
                "run_id": new.run_id,
                "updated_at": new.updated_at,
                "order_run": sa.case((later(new), new.order_run), else_=records.c.order_run),
                "order_index": sa.case((later(new), new.order_index), else_=records.c.order_index),
            },
            _MARK_COLUMNS,
        )
        self.confirm = on_conflict(
            lambda new: {
                "fingerprint": new.fingerprint,
                "mapping_fingerprint": new.mapping_fingerprint,
                "raw_hash": new.raw_hash,
                # A confirm without an id (a bulk import) keeps the id already known,
                # when it is of the same account (rule 10: never another account's).
                "remote_id": sa.case(
                    (
                        records.c.account.is_not_distinct_from(new.account),
                        sa.func.coalesce(new.remote_id, records.c.remote_id),
                    ),
                    else_=new.remote_id,
                ),
                "account": new.account,
                "last_status": new.last_status,
                "last_error_code": sa.null(),
                "in_flight": sa.false(),
                "updated_at": new.updated_at,
                # A confirm without an order (an unchanged contact's refresh) keeps it.
                "order_run": sa.func.coalesce(new.order_run, records.c.order_run),
                "order_index": sa.func.coalesce(new.order_index, records.c.order_index),
                "coarse": new.coarse,
            },
            _CONFIRM_COLUMNS,
        )
        self.record_failure = on_conflict(
            lambda new: {
                "last_status": new.last_status,
                "last_error_code": new.last_error_code,
                "in_flight": sa.false(),
                "updated_at": new.updated_at,
            },
            _FAILURE_COLUMNS,
        )


def _run(row: sa.Row[Any]) -> RunInfo:
    counts = None if row.counts is None else dict(json.loads(row.counts))
    return RunInfo(
        run_id=row.run_id,
        tenant=row.tenant,
        started_at=row.started_at,
        finished_at=row.finished_at,
        mapping_fingerprint=row.mapping_fingerprint,
        counts=counts,
    )
