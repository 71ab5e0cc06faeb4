"""pytest plugin for applications using contactsync (entry point ``pytest11``).

Fixtures:

- ``contactsync_client(config, tenant)``: a :class:`~contactsync.Client` for that tenant
  whose requests go to the tenant's provider emulator, in-process.
- ``contactsync_cassette(config, tenant, name)``: a client replaying
  ``<cassette dir>/<name>.yaml`` offline (``record_mode="none"``); with
  ``--contactsync-record`` it records that cassette from the emulator instead.
- ``contactsync_emulator(config, tenant)``: the emulator itself, to inspect what was
  stored (``.emulator.contacts()``) or to inject faults.
- ``contactsync_async_client(config, tenant)``: the async counterpart of the first.

The cassette directory is the ``contactsync_cassette_dir`` ini option (relative to the
rootdir), ``cassettes`` next to the test file by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._harness import Harness

# Every environment with contactsync installed loads this module when pytest starts,
# with or without the ``testing`` extra: import nothing beyond pytest here, so an
# unrelated test suite never pays for (or breaks on) vcrpy and PyYAML.


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contactsync")
    group.addoption(
        "--contactsync-record",
        action="store_true",
        default=False,
        help="record contactsync cassettes from the built-in emulators instead of replaying",
    )
    parser.addini("contactsync_cassette_dir", "directory of contactsync cassettes", default="")


@pytest.fixture
def contactsync(request: pytest.FixtureRequest) -> Iterator[Harness]:
    configured = str(request.config.getini("contactsync_cassette_dir"))
    cassettes = (
        Path(request.config.rootpath) / configured
        if configured
        else request.path.parent / "cassettes"
    )
    from ._harness import Harness  # noqa: PLC0415 - see the note at the top

    harness = Harness(cassettes, record=bool(request.config.getoption("--contactsync-record")))
    yield harness
    harness.close()


@pytest.fixture
def contactsync_client(contactsync: Harness) -> object:
    return contactsync.client


@pytest.fixture
def contactsync_async_client(contactsync: Harness) -> object:
    return contactsync.async_client


@pytest.fixture
def contactsync_cassette(contactsync: Harness) -> object:
    return contactsync.cassette


@pytest.fixture
def contactsync_emulator(contactsync: Harness) -> object:
    return contactsync.emulator
