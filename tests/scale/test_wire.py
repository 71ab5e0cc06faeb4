"""Outcomes over the task queue keep what the report and --failed need."""

from __future__ import annotations

from contactsync import Outcome, OutcomeError, SkipReason, Status
from contactsync._scale._wire import outcome_from_wire, outcome_to_wire


def test_a_skip_reason_and_a_superseded_failure_cross_the_wire() -> None:
    skipped = Outcome(3, Status.SKIPPED, reason=SkipReason.SUPERSEDED)
    error = OutcomeError("request_failed", "HTTP 500 (superseded by input 9)", retryable=False)
    failed = Outcome(4, Status.FAILED, error=error, reason=SkipReason.SUPERSEDED, order=(2, 4))
    back = [outcome_from_wire(outcome_to_wire(o, o.index + 100)) for o in (skipped, failed)]
    assert [(o.index, o.status, o.reason) for o in back] == [
        (103, Status.SKIPPED, SkipReason.SUPERSEDED),
        (104, Status.FAILED, SkipReason.SUPERSEDED),
    ]
    assert back[1].error == error
    # A chunk's positions are not the run's: the order does not travel.
    assert back[1].order is None
