"""Outcomes and rows as the JSON a task queue carries (no pickling: a broker message
must not be able to run code in a worker)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._outcome import Outcome, OutcomeError, Status


def outcome_to_wire(outcome: Outcome, index: int) -> dict[str, Any]:
    """``outcome`` under the input ``index`` of the whole run (not of the chunk)."""
    return {
        "index": index,
        "status": outcome.status.value,
        "remote_id": outcome.remote_id,
        "external_id": outcome.external_id,
        "warnings": list(outcome.warnings),
        "error": None if outcome.error is None else outcome.error.to_json(),
        "requests": outcome.requests,
        # A skip's reason, and a failure superseded by a later row (left out of --failed).
        # Not the order: a chunk's positions are not the run's.
        "reason": outcome.reason,
    }


def outcome_from_wire(data: Mapping[str, Any], source: object = None) -> Outcome:
    error = data.get("error")
    return Outcome(
        int(data["index"]),
        Status(data["status"]),
        remote_id=data.get("remote_id"),
        external_id=data.get("external_id"),
        warnings=tuple(data.get("warnings") or ()),
        error=None
        if error is None
        else OutcomeError(
            code=error["code"],
            message=error["message"],
            field=error.get("field"),
            status_code=error.get("status_code"),
            retryable=bool(error.get("retryable", False)),
            detail=error.get("detail"),
        ),
        requests=int(data.get("requests") or 0),
        input=source,
        reason=data.get("reason"),
    )
