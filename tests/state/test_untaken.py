"""A run cancelled before it took all its input: ``Run.untaken()`` gives each row never
taken its outcome, with the order a replay needs, and never offers a person's earlier
row again while a later one is in the input. The run is cancelled from its first
outcome (in the iterating thread), so how much it took does not depend on speed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contactsync_gleantap import DEMO_API_KEY, DEMO_APP_ID, DEMO_SECRET_KEY

from contactsync import Client, Outcome, Status

TENANT = {
    "tenants": {
        "g": {
            "provider": "gleantap",
            "base_url": "emulator",
            "credentials": {"api_key": DEMO_API_KEY, "secret_key": DEMO_SECRET_KEY},
            "options": {"app_id": DEMO_APP_ID},
            "http": {"concurrency": 1},
        }
    }
}
PEOPLE = 1000


def _rows(order: bool = False) -> list[dict[str, Any]]:
    """Each person three times, their rows far apart (rows 0, 1000 and 2000 are p0's):
    most people's rows are all after what a run takes before its first outcome."""
    rows: list[dict[str, Any]] = []
    for k in range(3):
        for i in range(PEOPLE):
            row: dict[str, Any] = {
                "external_id": f"p{i}",
                "first_name": "F",
                "email": f"p{i}@example.com",
                "last_name": f"L{k}",
            }
            if order:
                # As read back from a --failed file of run 1.
                row["_contactsync"] = {"index": len(rows), "order": [1, len(rows)]}
            rows.append(row)
    return rows


def _cancelled_run(
    client: Client, rows: list[dict[str, Any]]
) -> tuple[list[Outcome], list[Outcome]]:
    run = client.upsert_many(rows)
    taken: list[Outcome] = []
    for outcome in run:
        if not taken:
            run.cancel()
        taken.append(outcome)
    return taken, list(run.untaken())


def test_rows_never_taken_carry_their_order_and_only_last_rows_are_offered(
    tmp_path: Path,
) -> None:
    rows = _rows()
    with Client(TENANT, "g", state=f"sqlite:///{tmp_path / 's.db'}") as client:
        taken, untaken = _cancelled_run(client, rows)
    assert untaken, "the run took all its input before it was cancelled"
    indexes = sorted(o.index for o in taken + untaken)
    assert indexes == list(range(len(rows)))
    last = {row["external_id"]: n for n, row in enumerate(rows)}
    for outcome in untaken:
        if outcome.index == last[outcome.external_id]:
            assert outcome.status is Status.FAILED
            assert outcome.error is not None
            assert outcome.error.code == "interrupted"
            assert outcome.error.retryable
            assert outcome.order is not None
            assert outcome.order[1] == outcome.index
        else:
            assert (outcome.status, outcome.reason) == (Status.SKIPPED, "superseded")
    seqs = {o.order[0] for o in taken + untaken if o.order is not None}
    assert len(seqs) == 1, "every row of a run has that run's number"
    offered = [o.external_id for o in taken + untaken if o.error is not None and o.error.retryable]
    assert len(offered) == len(set(offered)), "a person offered twice"


def test_a_replayed_row_never_taken_keeps_the_order_its_line_carries(tmp_path: Path) -> None:
    rows = _rows(order=True)
    with Client(TENANT, "g", state=f"sqlite:///{tmp_path / 's.db'}") as client:
        _, untaken = _cancelled_run(client, rows)
    failed = [o for o in untaken if o.status is Status.FAILED]
    assert failed
    assert all(o.order == (1, o.index) for o in failed)


def test_without_a_store_rows_never_taken_are_failed_in_input_order(tmp_path: Path) -> None:
    rows = _rows()
    with Client(TENANT, "g") as client:
        taken, untaken = _cancelled_run(client, rows)
    assert untaken
    assert sorted(o.index for o in taken + untaken) == list(range(len(rows)))
    assert [o.index for o in untaken] == sorted(o.index for o in untaken)
    assert all(o.status is Status.FAILED and o.order is None for o in untaken)
    assert {o.error.code for o in untaken if o.error is not None} == {"interrupted"}


def test_a_replayed_line_without_order_is_unchanged_when_the_store_confirmed_its_data(
    tmp_path: Path,
) -> None:
    """What a store can still tell of a line without ``_contactsync.order`` (written by a
    run without a store, or edited): that it holds the data confirmed last. Such a line
    costs no request; one with other data is new input (docs/sending.md)."""
    rows = _rows()[-PEOPLE:]
    with Client(TENANT, "g", state=f"sqlite:///{tmp_path / 's.db'}") as client:
        assert client.upsert_many(rows).drain().failed == 0
        replay = [{**row, "_contactsync": {"index": n}} for n, row in enumerate(rows)]
        summary = client.upsert_many(replay).drain()
    assert summary.unchanged == PEOPLE
    assert summary.requests == 0
