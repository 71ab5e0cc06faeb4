from __future__ import annotations

from collections.abc import Iterator

import pytest
from limits.aio.storage import memory

from contactsync.provider import default_registry
from tests.fakeprovider import FakeProvider


@pytest.fixture(autouse=True)
def fake_provider() -> Iterator[type[FakeProvider]]:
    default_registry.register(FakeProvider)
    yield FakeProvider
    default_registry.unregister(FakeProvider.name)


def no_sleep(seconds: float) -> None:
    del seconds


@pytest.fixture
def limiter_admissions(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The stamp the in-memory window limiter writes for each request it admits.

    These are the library's own admission times. A stamp taken by the caller after
    ``acquire()`` returns would carry the scheduler's delay (milliseconds on a loaded
    machine), which can crowd one request too many into a window the limiter kept.
    """
    admitted: list[float] = []
    original = memory.Entry.__init__

    def recording(entry: memory.Entry, expiry: int) -> None:
        original(entry, expiry)
        admitted.append(entry.atime)

    monkeypatch.setattr(memory.Entry, "__init__", recording)
    return admitted
