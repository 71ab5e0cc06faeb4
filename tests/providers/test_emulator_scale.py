"""Each emulator's cost per request does not grow with the contacts it stores.

Measured without a clock: the emulators keep their records in a
:class:`~contactsync._emulator.RecordStore`, which counts every record a lookup or a
scan touches. The same upserts (new contacts, and updates of stored ones found by
external id, email or phone) must touch exactly as many records with 100,000 contacts
stored as with 100.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from contactsync_gleantap import DEMO_APP_ID

from contactsync import Status
from tests.providers.gleantap.conftest import Gleantap
from tests.providers.ivvy.conftest import Ivvy
from tests.providers.yespo.conftest import Yespo, direct

SMALL, LARGE = 100, 100_000


def _row(n: int) -> dict[str, Any]:
    return {"external_id": f"gen-{n}", "first_name": f"First{n}", "last_name": f"Last{n}",
            "email": f"person{n}@example.com", "phone": f"+4420{7946_0000 + n:08d}"}  # fmt: skip


def _workload() -> list[dict[str, Any]]:
    """Updates of stored contacts (the first ten exist in both stores), then new ones."""
    updates = [{**_row(n), "last_name": f"Changed{n}"} for n in range(10)]
    by_email = [{k: v for k, v in _row(n).items() if k != "external_id"} for n in range(10, 15)]
    new = [_row(LARGE + n) for n in range(10)]
    return updates + by_email + new


def _fill_yespo(harness: Yespo, count: int) -> None:
    for n in range(count):
        row = _row(n)
        harness.emulator._new({"externalCustomerId": row["external_id"], "email": row["email"],
                               "sms": row["phone"], "firstName": row["first_name"],
                               "lastName": row["last_name"], "fields": {}})  # fmt: skip


def _fill_gleantap(harness: Gleantap, count: int) -> None:
    for n in range(count):
        row = _row(n)
        harness.emulator._new_contact({"app_id": DEMO_APP_ID, "user_id": row["external_id"],
                                       "email": row["email"], "phone": row["phone"],
                                       "first_name": row["first_name"],
                                       "last_name": row["last_name"]})  # fmt: skip


def _fill_ivvy(harness: Ivvy, count: int) -> None:
    for n in range(count):
        row = _row(n)
        harness.emulator._add_or_update({"externalId": row["external_id"], "email": row["email"],
                                         "phone": row["phone"], "firstName": row["first_name"],
                                         "lastName": row["last_name"]})  # fmt: skip


def _touched(make: Callable[[], Any], fill: Callable[[Any, int], None], stored: int,
             **options: Any) -> tuple[int, int]:  # fmt: skip
    """Records touched by the workload over ``stored`` contacts, and requests it sent."""
    harness = make()
    fill(harness, stored)
    assert len(harness.emulator.records) == stored
    before = harness.emulator.records.touched
    requests = harness.app.stats()["requests"]
    outcomes = harness.upsert(_workload(), **options)
    assert all(o.status is not Status.FAILED for o in outcomes), outcomes
    return (
        harness.emulator.records.touched - before,
        harness.app.stats()["requests"] - requests,
    )


Case = tuple[Callable[[], Any], Callable[[Any, int], None], dict[str, Any]]
CASES: dict[str, Case] = {
    "yespo-realtime": (Yespo, _fill_yespo, {"mode": "realtime"}),
    "yespo-bulk": (Yespo, _fill_yespo, {"mode": "bulk"}),
    "gleantap": (Gleantap, _fill_gleantap, {}),
    "ivvy": (Ivvy, _fill_ivvy, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_records_touched_per_request_do_not_grow_with_stored_contacts(case: str) -> None:
    make, fill, options = CASES[case]
    small, small_requests = _touched(make, fill, SMALL, **options)
    large, large_requests = _touched(make, fill, LARGE, **options)
    assert small_requests == large_requests > 0
    assert large == small > 0
    # A handful of records per request, not a scan of what is stored.
    assert large <= 10 * large_requests


def test_the_counter_sees_a_scan() -> None:
    # The instrument itself: a search without conditions pages through the store.
    harness = Yespo()
    _fill_yespo(harness, SMALL)
    before = harness.emulator.records.touched
    with direct(harness.emulator) as api:
        response = api.get("/api/v1/contacts", params={"startindex": 51, "maxrows": 10})
    assert response.status_code == 200
    assert len(response.json()) == 10
    assert harness.emulator.records.touched - before >= 60
