"""A phone number with an extension is rejected on every provider, never sent without it."""

from __future__ import annotations

from typing import Any

import pytest

from contactsync import Outcome, Status
from tests.providers.gleantap.conftest import Gleantap
from tests.providers.ivvy.conftest import Ivvy
from tests.providers.yespo.conftest import Yespo

PERSON = {"external_id": "x1", "first_name": "Ann", "last_name": "Lee", "email": "a@example.com"}


def run(provider: str, contact: dict[str, Any]) -> tuple[Outcome, list[Any]]:
    harness: Yespo | Ivvy | Gleantap
    harness = Yespo() if provider == "yespo" else Ivvy() if provider == "ivvy" else Gleantap()
    (outcome,) = harness.upsert([contact])
    return outcome, list(harness.transport.requests)


@pytest.mark.parametrize("provider", ["yespo", "ivvy", "gleantap"])
@pytest.mark.parametrize(
    "phone", ["+44 20 7946 0958 ext. 123", "020 7946 0958 x123", "+1 201-555-0123 ext 7"]
)
def test_phone_with_an_extension_is_rejected_before_any_request(provider: str, phone: str) -> None:
    outcome, requests = run(provider, {**PERSON, "phone": phone})
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.field) == ("invalid_contact", "phone")
    assert "extension" in outcome.error.message
    assert [r for r in requests if r.method != "GET"] == []


@pytest.mark.parametrize("provider", ["yespo", "ivvy", "gleantap"])
def test_the_same_number_without_an_extension_is_written(provider: str) -> None:
    outcome, _ = run(provider, {**PERSON, "phone": "+44 20 7946 0958"})
    assert outcome.status in (Status.CREATED, Status.UPDATED, Status.WRITTEN)
