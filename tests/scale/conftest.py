"""Fixtures of the scale-out tests: a real Redis, a real PostgreSQL, and real
``contactsync worker`` processes. Without ``redis-server`` (or PostgreSQL) they skip,
saying how to run them; under CI (``CI=true``) a missing server is a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.servers import (
    INSTALL_HINT,
    REDIS_INSTALL_HINT,
    PostgresServer,
    RedisServer,
    postgres_binaries,
)


def _missing(hint: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(hint)
    pytest.skip(hint)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing(REDIS_INSTALL_HINT)
        return
    server = RedisServer(binary).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    bindir = postgres_binaries()
    if bindir is None:
        _missing(INSTALL_HINT)
        return
    server = PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()
