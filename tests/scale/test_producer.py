"""The producer gives exactly one outcome per row of a chunk, whatever came back."""

from __future__ import annotations

from typing import Any

from contactsync import Status, Summary
from contactsync._scale._shard import Row
from contactsync.celery._outage import OutageGuard
from contactsync.celery._producer import _chunk_outcomes


class _Result:
    def __init__(self, value: Any, ok: bool = True) -> None:
        self.result = value
        self._ok = ok
        self.forgotten = False
        self.state = "SUCCESS" if ok else "FAILURE"

    def successful(self) -> bool:
        return self._ok

    def forget(self) -> None:
        # Like AsyncResult.forget: the cached state and result are gone with it.
        self.forgotten = True
        self.result, self.state = None, "PENDING"


ROWS = [Row(i, {"external_id": str(i)}) for i in (4, 5, 6)]
SOURCES: dict[int, object] = {row.index: row.record for row in ROWS}


def _wire(index: int, status: str = "updated") -> dict[str, Any]:
    return {"index": index, "status": status, "requests": 1, "warnings": [], "error": None}


def test_missing_duplicate_and_stray_outcomes_are_evened_out() -> None:
    result = _Result({"outcomes": [_wire(4), _wire(4, "created"), _wire(99)], "requests": 7})
    summary = Summary()
    outcomes = list(_chunk_outcomes(result, ROWS, SOURCES, summary, OutageGuard(5.0)))
    assert [(o.index, o.status) for o in outcomes] == [
        (4, Status.UPDATED),
        (5, Status.FAILED),
        (6, Status.FAILED),
    ]
    assert outcomes[1].error is not None
    assert outcomes[1].error.code == "provider_error"
    assert outcomes[0].input == {"external_id": "4"}
    assert summary.requests == 7
    assert result.forgotten


def test_a_failed_task_leaves_its_rows_unknown_not_unsent() -> None:
    result = _Result(RuntimeError("boom"), ok=False)
    outcomes = list(_chunk_outcomes(result, ROWS, SOURCES, Summary(), OutageGuard(5.0)))
    assert [o.index for o in outcomes] == [4, 5, 6]
    assert {o.error.code for o in outcomes if o.error} == {"outcome_unknown"}
    assert all(o.error and o.error.retryable for o in outcomes)
    error = outcomes[0].error
    assert error is not None
    assert "RuntimeError" in error.message


def test_a_failure_without_an_exception_names_the_state_and_keeps_external_ids() -> None:
    outcomes = list(
        _chunk_outcomes(_Result(None, ok=False), ROWS, SOURCES, Summary(), OutageGuard(5.0))
    )
    assert [o.external_id for o in outcomes] == ["4", "5", "6"]
    assert all(o.error and "FAILURE" in o.error.message for o in outcomes)
    assert all(o.error and "NoneType" not in o.error.message for o in outcomes)


def test_written_comes_back_from_a_worker_as_written() -> None:
    result = _Result(
        {"outcomes": [_wire(4, "written"), _wire(5, "created"), _wire(6)], "requests": 3}
    )
    summary = Summary()
    outcomes = list(_chunk_outcomes(result, ROWS, SOURCES, summary, OutageGuard(5.0)))
    assert [o.status for o in outcomes] == [Status.WRITTEN, Status.CREATED, Status.UPDATED]
    for outcome in outcomes:
        summary.add(outcome)
    assert (summary.written, summary.created, summary.updated, summary.total) == (1, 1, 1, 3)
