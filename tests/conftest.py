from __future__ import annotations

from collections.abc import Iterator

import pytest

from contactsync.provider import default_registry
from tests.fakeprovider import FakeProvider


@pytest.fixture(autouse=True)
def fake_provider() -> Iterator[type[FakeProvider]]:
    default_registry.register(FakeProvider)
    yield FakeProvider
    default_registry.unregister(FakeProvider.name)


def no_sleep(seconds: float) -> None:
    del seconds
