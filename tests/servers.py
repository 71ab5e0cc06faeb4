"""Database servers the test suite starts for itself, from the machine's binaries.

:class:`PostgresServer` runs a throw-away PostgreSQL cluster: ``initdb`` in a fresh
temporary folder, ``postgres`` listening on a free loopback port only (no Unix
socket), password authentication (SCRAM) for TCP, stopped and deleted at the end.
PostgreSQL refuses to run as root, so under root the server runs as the ``postgres``
user when it exists, else ``nobody``.

Binaries are looked for under ``/usr/lib/postgresql/<version>/bin`` (Debian, Ubuntu),
then ``pg_config --bindir`` and the ``PATH``. Without them :func:`postgres_binaries`
returns ``None`` and the fixtures skip with an install hint.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

INSTALL_HINT: Final = (
    "PostgreSQL server binaries (initdb, postgres) not found: install them with "
    "`apt-get install postgresql` (Debian/Ubuntu) or put their bin folder on PATH"
)
_START_TIMEOUT: Final = 30.0


def postgres_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, newest version first."""
    candidates: list[Path] = []

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True):
        candidates.append(Path(initdb).parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as, or ``None`` when not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


class PostgresServer:
    """One running cluster. Use as a context manager, or :meth:`start` / :meth:`stop`."""

    user: Final = "contactsync"
    database: Final = "contactsync_test"

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.account = _run_as()
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def run_as(self) -> str:
        return self.account.pw_name if self.account else pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str | None = None, *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return (
            f"postgresql://{self.user}:{secret}@127.0.0.1:{self.port}/{database or self.database}"
        )

    def _popen_args(self) -> dict[str, Any]:
        if self.account is None:
            return {}
        return {
            "user": self.account.pw_uid,
            "group": self.account.pw_gid,
            "extra_groups": [],
            "env": {
                "PATH": "/usr/bin:/bin",
                "HOME": str(self._root),
                "LC_ALL": "C",
                "LANG": "C",
            },
        }

    def _chown(self, path: Path) -> None:
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def start(self) -> PostgresServer:
        self._root = Path(tempfile.mkdtemp(prefix="contactsync-pg-"))
        self._chown(self._root)
        data = self._root / "data"
        pwfile = self._root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        log = self._root / "initdb.log"
        with log.open("wb") as out:
            result = subprocess.run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    self.user,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._root,
                timeout=120,
                check=False,
                **self._popen_args(),
            )
        if result.returncode != 0:
            text = log.read_text(errors="replace")
            self.stop()
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{text}")
        last: str = ""
        for _attempt in range(5):
            self.port = free_port()
            server_log = (self._root / "server.log").open("ab")
            self._process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=100",
                ],
                stdout=server_log,
                stderr=subprocess.STDOUT,
                cwd=self._root,
                **self._popen_args(),
            )
            server_log.close()
            if self._wait_ready():
                self.create_database(self.database)
                return self
            last = (self._root / "server.log").read_text(errors="replace")
            self._terminate()
        self.stop()
        raise RuntimeError(f"postgres did not start:\n{last}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                ready = subprocess.run(
                    [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                    capture_output=True,
                    timeout=10,
                    check=False,
                )
                if ready.returncode == 0:
                    return True
            time.sleep(0.1)
        return False

    def create_database(self, name: str) -> str:
        """A new, empty database on this server; returns its URL."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients (a test that
        # failed may have left a pool open) instead of waiting for them.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        self._terminate()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server, or :class:`LookupError` with :data:`INSTALL_HINT`."""
    bindir = postgres_binaries()
    if bindir is None:
        raise LookupError(INSTALL_HINT)
    with PostgresServer(bindir) as server:
        yield server


REDIS_INSTALL_HINT: Final = (
    "redis-server not found: install it with `apt-get install redis-server` "
    "(Debian/Ubuntu) to run the scale-out tests (.ci/run does)"
)


class RedisServer:
    """A throw-away ``redis-server`` on a free loopback port: no persistence, no
    Unix socket, stopped at the end."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._root: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self._root = Path(tempfile.mkdtemp(prefix="contactsync-redis-"))
        for _attempt in range(5):
            self.port = free_port()
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self._root),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + _START_TIMEOUT
            while time.monotonic() < deadline and self._process.poll() is None:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn,
                ):
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return self
                time.sleep(0.05)
            self._terminate()
        self.stop()
        raise RuntimeError("redis-server did not start")

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        self._terminate()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A running ``redis-server``, or :class:`LookupError` with :data:`REDIS_INSTALL_HINT`."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise LookupError(REDIS_INSTALL_HINT)
    with RedisServer(binary) as server:
        yield server
