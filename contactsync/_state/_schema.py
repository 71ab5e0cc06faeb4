"""The store's tables and the migrations that build them.

Every table is prefixed ``contactsync_`` so the store can live in an application's own
PostgreSQL database. ``contactsync_schema`` holds one row per applied migration; the
schema version is the highest. Opening a store applies the missing migrations in one
transaction (serialized between processes: SQLite's write lock, a PostgreSQL advisory
lock) and refuses a schema newer than :data:`SCHEMA_VERSION`.

Adding a migration: append a :class:`Migration` with the next version whose ``apply``
changes the schema from the previous version (ALTER TABLE …); keep earlier ones as
they are, since they run on new stores too.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from typing import Any, Final

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeDecorator

from ._errors import StateSchemaError

SCHEMA_VERSION: Final = 4
"""The schema version this code reads and writes (the last migration's)."""

_ADVISORY_LOCK: Final = 0x636F6E7473796E63  # "contsync": serializes migrations on PostgreSQL


class UtcDateTime(TypeDecorator[datetime.datetime]):
    """Aware UTC datetimes, stored naive in UTC so every dialect keeps them alike.

    On SQLite the column is ISO 8601 text (``2024-05-06 07:08:09.123456``) converted
    here with the C ``isoformat`` / ``fromisoformat``: several times cheaper than the
    generic DATETIME processing when 1,000 records are read or written at once.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store")
        naive = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return naive.isoformat(sep=" ") if dialect.name == "sqlite" else naive

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime.datetime | None:
        return None if value is None else utc_from_db(value)


def utc_from_db(value: str | datetime.datetime) -> datetime.datetime:
    """A stored ``updated_at`` (ISO text on SQLite, a naive datetime on PostgreSQL) as
    an aware UTC datetime. The text gets its offset before parsing: one C call, about
    five times cheaper than parsing and then replacing the zone."""
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value + "+00:00")
    return value.replace(tzinfo=datetime.UTC)


metadata = sa.MetaData()

schema_table = sa.Table(
    "contactsync_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("applied_at", UtcDateTime, nullable=False),
)

records = sa.Table(
    "contactsync_records",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("mapping_fingerprint", sa.String(64)),
    sa.Column("raw_hash", sa.String(64)),
    sa.Column("remote_id", sa.Text),
    sa.Column("last_status", sa.String(16)),
    sa.Column("last_error_code", sa.String(64)),
    sa.Column("in_flight", sa.Boolean(create_constraint=False), nullable=False),
    sa.Column("run_id", sa.String(32)),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Version 2: the order of the confirmed data (the sequence of the run that wrote it,
    # and its input position there), so that an older row replayed later is not written.
    sa.Column("order_run", sa.BigInteger),
    sa.Column("order_index", sa.BigInteger),
    # Version 3: the platform account the remote id and the confirmation belong to.
    sa.Column("account", sa.String(64)),
    # Version 4: the key as the platform may compare it (see ``_coarse``), so that a
    # confirmation does not outlive a write to the same record under another key.
    sa.Column("coarse", sa.Text),
)
sa.Index(
    "ix_contactsync_records_in_flight",
    records.c.tenant,
    sqlite_where=records.c.in_flight,
    postgresql_where=records.c.in_flight,
)

runs = sa.Table(
    "contactsync_runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(200), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("mapping_fingerprint", sa.String(64)),
    sa.Column("counts", sa.Text),
    # Version 2: the run's place in the store's run sequence (see ``sequences``).
    sa.Column("seq", sa.BigInteger),
)
sa.Index("ix_contactsync_runs_tenant_started", runs.c.tenant, runs.c.started_at)

sequences = sa.Table(
    "contactsync_sequences",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)
"""Counters the store hands out in its write transactions (version 2): ``run`` orders
runs, monotone across every process using the store, whatever the clocks say."""

RUN_SEQUENCE: Final = "run"

_ADDED_IN_V2: Final = {
    "contactsync_records": ("order_run", "order_index"),
    "contactsync_runs": ("seq",),
}

sa.Index("ix_contactsync_records_coarse", records.c.tenant, records.c.coarse)
sa.Index("ix_contactsync_records_remote_id", records.c.tenant, records.c.remote_id)
_INDEXES_V4: Final = ("ix_contactsync_records_coarse", "ix_contactsync_records_remote_id")

tenants = sa.Table(
    "contactsync_tenants",
    metadata,
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("mapping_fingerprint", sa.String(64)),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Version 3: the account of the tenant's last run, and the tenant's name for it.
    sa.Column("account", sa.String(64)),
    sa.Column("account_name", sa.String(200)),
)

_ADDED_IN_V3: Final = {
    "contactsync_records": ("account",),
    "contactsync_tenants": ("account", "account_name"),
}


_ADDED_IN_V4: Final[dict[str, tuple[str, ...]]] = {"contactsync_records": ("coarse",)}


@attrs.frozen
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _as_of_v1(table: sa.Table, shape: sa.MetaData) -> sa.Table:
    """``table`` as version 1 created it: without the columns later versions add (a
    new store runs every migration, so version 1 must build exactly its own shape)."""
    later = (
        *_ADDED_IN_V2.get(table.name, ()),
        *_ADDED_IN_V3.get(table.name, ()),
        *_ADDED_IN_V4.get(table.name, ()),
    )
    columns = [column._copy() for column in table.columns if column.name not in later]
    copy = sa.Table(table.name, shape, *columns)
    for index in table.indexes:
        if index.name in _INDEXES_V4:
            continue
        sa.Index(
            index.name,
            *(copy.c[column.name] for column in index.columns),
            **index.dialect_kwargs,
        )
    return copy


def _v1(conn: Connection) -> None:
    shape = sa.MetaData()
    tables = [_as_of_v1(table, shape) for table in (records, runs, tenants)]
    shape.create_all(conn, tables=tables)


def _add_columns(conn: Connection, added: dict[str, tuple[str, ...]]) -> None:
    for table, names in added.items():
        for name in names:
            column = metadata.tables[table].c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))


def _v2(conn: Connection) -> None:
    _add_columns(conn, _ADDED_IN_V2)
    metadata.create_all(conn, tables=[sequences])
    conn.execute(sequences.insert().values(name=RUN_SEQUENCE, value=0))


def _v3(conn: Connection) -> None:
    _add_columns(conn, _ADDED_IN_V3)


def _v4(conn: Connection) -> None:
    from ._coarse import coarse_key  # noqa: PLC0415

    _add_columns(conn, _ADDED_IN_V4)
    for index in records.indexes:
        if index.name in _INDEXES_V4:
            index.create(conn)
    # Records written before: their coarse key, worked out once here.
    rows = conn.execute(sa.select(records.c.tenant, records.c.key)).all()
    updates = [{"t": t, "k": k, "c": coarse_key(k)} for t, k in rows]
    if updates:
        conn.execute(
            records.update()
            .where(records.c.tenant == sa.bindparam("t"), records.c.key == sa.bindparam("k"))
            .values(coarse=sa.bindparam("c")),
            updates,
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "records, runs and tenant metadata", _v1),
    Migration(2, "the order of runs and of confirmed data (replay safety)", _v2),
    Migration(3, "per-account remote ids: records.account, tenants.account", _v3),
    Migration(4, "coarse keys: a confirmation never outlives a write to its record", _v4),
)


def current_version(conn: Connection) -> int | None:
    """The schema version of the store, or ``None`` when it has no schema table."""
    if not sa.inspect(conn).has_table(schema_table.name):
        return None
    version: Any = conn.execute(sa.select(sa.func.max(schema_table.c.version))).scalar()
    return None if version is None else int(version)


def _check_not_newer(version: int | None, where: str, supported: int) -> None:
    if version is not None and version > supported:
        raise StateSchemaError(
            f"{where}: schema version {version} is newer than this version of contactsync "
            f"supports ({supported}); upgrade contactsync to use this store"
        )


def check_readable(conn: Connection, where: str) -> None:
    """For a read-only open: the schema must be exactly the current one."""
    supported = MIGRATIONS[-1].version
    version = current_version(conn)
    if version is None:
        raise StateSchemaError(
            f"{where}: no state store schema here; open it once read-write "
            "(a sync run) to create it"
        )
    _check_not_newer(version, where, supported)
    if version < supported:
        raise StateSchemaError(
            f"{where}: schema version {version} is older than this version of contactsync "
            f"needs ({supported}); open it once read-write (a sync run) to migrate it"
        )


def migrate(
    conn: Connection, where: str, migrations: Sequence[Migration] | None = None
) -> tuple[int | None, int]:
    """Apply the missing ``migrations`` inside ``conn``'s transaction.

    Returns the versions before and after. The caller's transaction must hold the
    write lock (SQLite ``BEGIN IMMEDIATE``); on PostgreSQL an advisory lock is taken
    here, so two processes opening a new store at once do not both create it.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_ADVISORY_LOCK)))
    if migrations is None:
        migrations = MIGRATIONS
    supported = migrations[-1].version
    before = current_version(conn)
    _check_not_newer(before, where, supported)
    if before is None:
        metadata.create_all(conn, tables=[schema_table])
    now = datetime.datetime.now(datetime.UTC)
    for migration in migrations:
        if before is not None and migration.version <= before:
            continue
        migration.apply(conn)
        conn.execute(
            schema_table.insert().values(
                version=migration.version, description=migration.description, applied_at=now
            )
        )
    return before, supported
