"""The tenant lock: one run of a tenant per state store at a time.

Two runs of one tenant on one store would write the same people at once, each
trusting the store's view of what the other is changing. A run takes the lock first
and is refused (:class:`TenantLocked`, naming the holder's run id) while another run
holds it.

The lock is the operating system's, never a row: it is released when the run ends,
when it fails, and when its process is killed, with nothing left to clean.

- SQLite: ``flock`` on a file per tenant in ``<store>.locks/`` beside the database,
  found from the database's real path (symlinks, ``..`` and relative paths resolved),
  so every name of one file meets one lock. A database with several hard links is
  refused: the names cannot be told to be one file from the path, and SQLite itself
  does not support it (its journal is found by name). The file holds the holder's run
  id (written after the lock is taken; it is only read to name the holder, the lock
  itself is what counts).
- PostgreSQL: a session advisory lock keyed by the tenant, held on a connection of
  its own (outside the store's pool, so it is never handed to other work). The
  holder's run id is that session's ``application_name``, read from
  ``pg_stat_activity``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection

from ._errors import StateError, TenantLocked

_LABEL: Final = b"contactsync tenant lock\0"
_APPLICATION: Final = "contactsync run "


def _digest(tenant: str) -> bytes:
    return hashlib.sha256(_LABEL + tenant.encode("utf-8")).digest()


class TenantLock(Protocol):
    def try_acquire(self, run_id: str) -> tuple[bool, str | None]:
        """Take the lock for ``run_id`` if it is free: ``(True, None)``; else
        ``(False, holder)`` where ``holder`` is the holder's run id when known."""

    def release(self) -> None:
        """Give the lock up (idempotent; a lock never taken is left alone)."""


class FileLock:
    """``flock`` on ``<database>.locks/<tenant digest>.lock`` (SQLite stores)."""

    def __init__(self, database: Path, tenant: str) -> None:
        # The real path: a second run through a symlink or another spelling of the
        # path must meet the same lock file.
        database = database.resolve()
        self.database = database
        folder = database.with_name(database.name + ".locks")
        self.path = folder / f"{_digest(tenant).hex()[:32]}.lock"
        self._fd: int | None = None

    def try_acquire(self, run_id: str) -> tuple[bool, str | None]:
        try:
            import fcntl  # noqa: PLC0415 - POSIX only; imported where the lock is taken
        except ImportError:
            raise StateError(
                "the tenant lock of a SQLite store needs POSIX file locks (fcntl), "
                "which this system lacks; use a PostgreSQL store"
            ) from None

        if self._fd is not None:
            return True, None
        refuse_hard_links(self.database)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"cannot open the tenant lock file {self.path}: {exc}") from None
        try:
            # flock, not lockf: it is per open file, so two stores opened by one
            # process exclude each other too, and the OS drops it when the process dies.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            return False, holder
        except OSError as exc:
            os.close(fd)
            raise StateError(f"cannot lock {self.path}: {exc}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, run_id.encode("ascii"), 0)
        self._fd = fd
        return True, None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock


def refuse_hard_links(database: Path) -> None:
    """Two hard links are two paths to one file, each with its own lock folder: a run
    through each would not exclude the other. SQLite finds the journal by name, so it
    cannot keep such a database whole either (sqlite.org/howtocorrupt.html, "multiple
    links to the same file")."""
    try:
        links = database.stat().st_nlink
    except FileNotFoundError:
        return  # created by this run: one name
    except OSError as exc:
        raise StateError(f"cannot read {database}: {exc}") from None
    if links > 1:
        raise StateError(
            f"the state database {database} has {links} hard links; the tenant lock "
            "(and SQLite) need one name per database: copy the file instead of linking it"
        )


def _read(fd: int) -> str | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text or None


class AdvisoryLock:
    """A PostgreSQL session advisory lock on a connection of its own."""

    def __init__(self, url: URL, tenant: str, where: str) -> None:
        self._url = url
        self._where = where
        self.key = int.from_bytes(_digest(tenant)[:8], "big", signed=True)
        self._engine: sa.Engine | None = None
        self._conn: Connection | None = None
        self._held = False

    def _connection(self) -> Connection:
        if self._conn is None:
            self._engine = sa.create_engine(
                self._url,
                poolclass=sa.NullPool,
                hide_parameters=True,
                connect_args={"connect_timeout": 10, "application_name": "contactsync"},
            )
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def try_acquire(self, run_id: str) -> tuple[bool, str | None]:
        if self._held:
            return True, None
        try:
            conn = self._connection()
            conn.execute(
                sa.text("SELECT set_config('application_name', :name, false)"),
                {"name": _APPLICATION + run_id},
            )
            got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar()
            if got:
                self._held = True
                return True, None
            return False, self._holder(conn)
        except sa_exc.SQLAlchemyError as exc:
            self.release()
            raise StateError(
                f"{self._where}: cannot take the tenant lock: {type(exc).__name__}"
            ) from None

    def _holder(self, conn: Connection) -> str | None:
        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        row: Any = conn.execute(
            sa.text(
                "SELECT a.application_name FROM pg_locks l"
                " JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                " AND l.database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
                " AND l.pid <> pg_backend_pid()"
            ),
            {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF},
        ).first()
        name = None if row is None else row[0]
        if isinstance(name, str) and name.startswith(_APPLICATION):
            return name[len(_APPLICATION) :] or None
        return None

    def release(self) -> None:
        conn, self._conn = self._conn, None
        engine, self._engine = self._engine, None
        held, self._held = self._held, False
        if conn is not None:
            with contextlib.suppress(sa_exc.SQLAlchemyError):
                if held:
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(self.key)))
            with contextlib.suppress(sa_exc.SQLAlchemyError):
                conn.close()  # the session ends: its advisory locks go with it anyway
        if engine is not None:
            engine.dispose()


POLL: Final = 0.2
"""Seconds between two tries while a run waits for the lock."""


def refusal(
    tenant: str, holder: str | None, waited: float | None, *, interrupted: bool = False
) -> TenantLocked:
    """The error of a run refused the lock (after waiting ``waited`` seconds)."""
    who = f"run {holder}" if holder else "another run (its run id is not written yet)"
    if interrupted:
        message = f"interrupted while waiting for {who} to end (tenant {tenant}); nothing sent"
    elif not waited:
        message = (
            f"tenant {tenant} is being synced by {who} on this state store; "
            "a second run would write the same contacts at once: wait for it "
            "(--wait[=SECONDS]) or stop it"
        )
    else:
        message = (
            f"tenant {tenant} is still being synced by {who} on this state store "
            f"after waiting {waited:g} s; try again later or wait longer (--wait=SECONDS)"
        )
    return TenantLocked(message, holder)


def acquire(
    lock: TenantLock,
    tenant: str,
    run_id: str,
    wait: float | None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Take ``lock`` for ``run_id``, waiting up to ``wait`` seconds (``None``: for as
    long as it takes; 0: not at all), or raise :class:`TenantLocked`."""
    deadline = None if wait is None else clock() + wait
    while True:
        got, holder = lock.try_acquire(run_id)
        if got:
            return
        if deadline is not None and clock() >= deadline:
            lock.release()  # the connection kept for the next try
            raise refusal(tenant, holder, wait)
        pause = POLL if deadline is None else max(0.0, min(POLL, deadline - clock()))
        sleep(pause)
