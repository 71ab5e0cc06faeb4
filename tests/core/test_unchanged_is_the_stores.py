"""``unchanged`` means nothing was sent because the state store confirmed identical
data: a provider flow that reports it for a contact it handled is reported ``written``
(with a warning in the log), never passed on as ``unchanged``."""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from typing import Any

import attrs
import pytest

from contactsync import Client, Outcome, Status
from contactsync.provider import Prepared, Registry
from tests.fakeprovider import FakeProvider, contacts, tenant_config


class ClaimsUnchanged(FakeProvider):
    """A provider whose flow writes, then calls every existing contact unchanged."""

    def upsert(
        self, batch: Sequence[Prepared[dict[str, Any]]]
    ) -> Generator[Any, Any, Sequence[Outcome]]:
        outcomes = yield from super().upsert(batch)
        return [
            attrs.evolve(o, status=Status.UNCHANGED) if o.status is Status.UPDATED else o
            for o in outcomes
        ]


def _client(**options: Any) -> Client:
    registry = Registry(discover=False)
    registry.register(ClaimsUnchanged)
    return Client(tenant_config(), "t", registry=registry, **options)


def test_a_flow_cannot_report_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    with _client() as client:
        first = list(client.upsert_many(contacts(3)))
        assert {o.status for o in first} == {Status.CREATED}
        with caplog.at_level(logging.WARNING):
            again = sorted(client.upsert_many(contacts(3)), key=lambda o: o.index)
    assert [o.status for o in again] == [Status.WRITTEN] * 3
    assert all(o.requests > 0 for o in again)
    assert sum("reported unchanged" in r.getMessage() for r in caplog.records) == 3


def test_the_stores_unchanged_is_still_unchanged(tmp_path: Any) -> None:
    with _client(state=f"sqlite:///{tmp_path / 's.db'}") as client:
        list(client.upsert_many(contacts(3)))
        again = list(client.upsert_many(contacts(3)))
    assert [o.status for o in again] == [Status.UNCHANGED] * 3
    assert all(o.requests == 0 for o in again)
