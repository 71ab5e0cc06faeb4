"""Fixtures: every store test runs on SQLite and on a real PostgreSQL server that the
suite starts itself (see :mod:`tests.servers`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contactsync._state import StateStore, open_store
from tests.servers import INSTALL_HINT, PostgresServer, postgres_binaries

BACKENDS = ("sqlite", "postgresql")
_names = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session, stopped at its end.

    Skips when the binaries are missing, except under CI (``CI=true``), whose script
    installs them: there a missing server is a failure, not a silent skip.
    """
    bindir = postgres_binaries()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    server = PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture
def url_factory(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """URLs of new, empty stores on ``backend``."""
    if backend == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'state-{next(_names)}.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return lambda: server.create_database(f"t{os.getpid()}_{next(_names)}")


@pytest.fixture
def url(url_factory: Callable[[], str]) -> str:
    return url_factory()


@pytest.fixture
def store(url: str) -> Iterator[StateStore]:
    opened = open_store(url)
    try:
        yield opened
    finally:
        opened.close()
