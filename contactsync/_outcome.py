"""What happened to each contact, and the totals of a run."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs


class Status(enum.StrEnum):
    CREATED = "created"
    """New on the platform: its answer (or a look-up in this run) proves it."""
    UPDATED = "updated"
    """Existed before this write: the platform's answer (or a look-up) proves it."""
    WRITTEN = "written"
    """Written, but the platform did not say whether it created or updated the record."""
    UNCHANGED = "unchanged"
    """Nothing was sent: the state store confirmed the platform holds this very data."""
    SKIPPED = "skipped"
    """Left alone by the tenant's sync mode (see :class:`SkipReason`): a success."""
    REJECTED = "rejected"
    """Invalid input or a feature the platform lacks: never sent."""
    FAILED = "failed"
    """Sent, and the platform refused it or the retries ran out."""


class ErrorCode(enum.StrEnum):
    """Why a contact was rejected or failed. Stable: programs branch on these."""

    INVALID_CONTACT = "invalid_contact"
    """Rejected: a value is invalid or the platform could never write this contact."""
    UNSUPPORTED_FEATURE = "unsupported_feature"
    """Rejected: the platform cannot express something the contact sets."""
    UNREADABLE_INPUT = "unreadable_input"
    """Rejected: the input line or record could not be read."""
    PLATFORM_ERROR = "platform_error"
    """Failed: the platform answered and refused the contact."""
    REQUEST_FAILED = "request_failed"
    """Failed: a request could not be completed (retries ran out, transport failed);
    the platform did not apply it."""
    OUTCOME_UNKNOWN = "outcome_unknown"
    """Failed: a request that is not safe to resend may or may not have been applied
    (its response was lost) and the flow could not find out which."""
    NOT_SENT = "not_sent"
    """Failed: never sent, because an earlier step of the same flow failed."""
    AUTH_FAILED = "auth_failed"
    """Failed: the platform refused the tenant's credentials; nothing more was sent."""
    PLATFORM_UNREACHABLE = "platform_unreachable"
    """Failed: every attempt for ``http.breaker_after`` seconds failed to reach the
    platform; the rest of the run was not sent."""
    INTERRUPTED = "interrupted"
    """Failed: the run was stopped (Ctrl-C, ``Run.cancel()``) before it was sent."""
    SETUP_FAILED = "setup_failed"
    """Failed: the provider's setup (e.g. reading field definitions) did not complete."""
    PROVIDER_ERROR = "provider_error"
    """Failed: the provider's own code went wrong (a bug: please report it)."""
    IDENTITY_CONFLICT = "identity_conflict"
    """Rejected: the platform would land this person on a record that belongs to another
    person (rule 7); nothing was sent."""


class SkipReason(enum.StrEnum):
    """Why a ``skipped`` contact was left alone."""

    EXISTS = "exists"
    """``create_only``: the platform already holds this contact; it was not touched."""
    NOT_FOUND = "not_found"
    """``update_only``: the platform holds no such contact; none was created."""
    SUPERSEDED = "superseded"
    """A later row of the same person (in this input, or confirmed by the state store from
    a later run or input position) carries newer data: this older row was not written."""


@attrs.frozen
class OutcomeError:
    """Why a contact was rejected or failed, in a form a program can branch on."""

    code: str
    """One of :class:`ErrorCode` (a ``str`` enum, so it compares equal to its value)."""
    message: str
    field: str | None = None
    status_code: int | None = None
    retryable: bool = False
    detail: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in attrs.asdict(self).items() if v is not None}
        if self.detail is not None:
            data["detail"] = dict(self.detail)
        return data


@attrs.frozen
class Outcome:
    """The single result for one input contact."""

    index: int
    """Position of the contact in the input (0-based)."""
    status: Status
    remote_id: str | None = None
    external_id: str | None = None
    warnings: tuple[str, ...] = ()
    error: OutcomeError | None = None
    requests: int = 0
    """HTTP requests (retries included) made by the flow that handled this contact."""
    input: object = attrs.field(default=None, eq=False, repr=False)
    """The contact (or raw record) this outcome is about, for re-submission."""
    reason: str | None = None
    """Why a ``skipped`` contact was left alone: one of :class:`SkipReason`. A ``failed``
    contact with reason ``superseded`` is not to be sent again: a later row of the same
    person came after it (its error is not retryable; ``--failed`` leaves it out)."""
    order: tuple[int, int] | None = None
    """Of a rejected or failed contact in a run with a state store: the run's sequence
    number and the row's input position (kept from the ``--failed`` line it was read
    from), which tells a replay whether the store holds newer data of the person."""

    @property
    def ok(self) -> bool:
        return self.status not in (Status.REJECTED, Status.FAILED)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "external_id": self.external_id,
            "status": self.status.value,
            "remote_id": self.remote_id,
            "warnings": list(self.warnings),
            "error": None if self.error is None else self.error.to_json(),
            **({} if self.reason is None else {"reason": self.reason}),
            **({} if self.order is None else {"order": list(self.order)}),
        }


@attrs.define
class Summary:
    """Running totals; ``requests`` counts every HTTP request, retries included."""

    created: int = 0
    updated: int = 0
    written: int = 0
    unchanged: int = 0
    skipped: int = 0
    rejected: int = 0
    failed: int = 0
    requests: int = 0

    def add(self, outcome: Outcome) -> None:
        # The member itself names the field (a str enum): ``.value`` is slow, per row.
        name: str = outcome.status
        setattr(self, name, getattr(self, name) + 1)

    @property
    def total(self) -> int:
        return (
            self.created
            + self.updated
            + self.written
            + self.unchanged
            + self.skipped
            + self.rejected
            + self.failed
        )

    def to_json(self) -> dict[str, int]:
        return attrs.asdict(self)


_FIELDS = (
    "index",
    "status",
    "remote_id",
    "external_id",
    "warnings",
    "error",
    "requests",
    "input",
    "reason",
    "order",
)
if tuple(field.name for field in attrs.fields(Outcome)) != _FIELDS:  # pragma: no cover
    raise AssertionError("unchanged() below must set every field of Outcome")
(
    _index,
    _status,
    _remote_id,
    _external_id,
    _warnings,
    _error,
    _requests,
    _input,
    _reason,
    _order,
) = (getattr(Outcome, name).__set__ for name in _FIELDS)


def unchanged(
    index: int, remote_id: str | None, external_id: str | None, source: object
) -> Outcome:
    """``Outcome(index, Status.UNCHANGED, remote_id=..., external_id=..., input=source)``
    at two thirds of the cost: the raw fast path makes one per unchanged row, and a frozen
    attrs ``__init__`` sets each field through ``object.__setattr__``. The same object
    in every respect (a test compares it, field by field, with the constructor's)."""
    outcome: Outcome = object.__new__(Outcome)
    _index(outcome, index)
    _status(outcome, Status.UNCHANGED)
    _remote_id(outcome, remote_id)
    _external_id(outcome, external_id)
    _warnings(outcome, ())
    _error(outcome, None)
    _requests(outcome, 0)
    _input(outcome, source)
    _reason(outcome, None)
    _order(outcome, None)
    return outcome
