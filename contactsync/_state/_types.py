"""What the state store holds and takes: plain frozen values."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

CONFIRMED_STATUSES: Final = frozenset({"created", "updated", "unchanged"})
"""Statuses a :class:`Confirmed` entry may carry: the platform holds the payload."""

UNCONFIRMED_STATUSES: Final = frozenset({"failed", "rejected", "skipped"})
"""Statuses a :class:`FailedEntry` may carry: nothing new was confirmed written."""

NEVER_CONFIRMED: Final = "never_confirmed"
"""The :attr:`StateSummary.by_status` key of records that were only marked in flight."""


def _status_in(allowed: frozenset[str]) -> Callable[[Any, attrs.Attribute[str], str], None]:
    def check(instance: Any, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in allowed:
            raise ValueError(
                f"{type(instance).__name__}.{attribute.name} must be one of "
                f"{sorted(allowed)}, not {value!r}"
            )

    return check


def _text(value: str) -> str:
    # A str enum (contactsync.Status) is stored as its value.
    return str(value)


@attrs.frozen
class StateRecord:
    """What the store knows about one identity of one tenant."""

    tenant: str
    key: str
    """The identity key, e.g. ``"external_id=c1"`` (:func:`contactsync.identity_keys`)."""
    fingerprint: str | None
    """Of the mapped payload last confirmed written; ``None`` if none ever was."""
    mapping_fingerprint: str | None
    """Of the tenant's mapping when that payload was written."""
    raw_hash: str | None
    """Of the raw input record that payload came from (a fast path)."""
    remote_id: str | None
    """The platform's id, once known (kept when a later confirm does not give one)."""
    last_status: str | None
    """created / updated / unchanged / skipped / rejected / failed, or ``None`` when the
    identity was marked in flight and never confirmed nor failed."""
    last_error_code: str | None
    in_flight: bool
    """Marked before sending and not yet confirmed or failed: a run was killed while
    it was being written, so the platform may or may not hold the new payload."""
    run_id: str | None
    """The run that last marked this identity in flight."""
    updated_at: datetime.datetime

    def is_current(self, fingerprint: str, mapping_fingerprint: str) -> bool:
        """Whether sending a payload with ``fingerprint`` (mapped with
        ``mapping_fingerprint``) can be skipped: the platform confirmed exactly that."""
        return (
            not self.in_flight
            and self.last_status in CONFIRMED_STATUSES
            and self.fingerprint == fingerprint
            and self.mapping_fingerprint == mapping_fingerprint
        )

    def raw_is_current(self, raw_hash: str, mapping_fingerprint: str) -> bool:
        """Like :meth:`is_current`, from the raw record alone (before mapping it)."""
        return (
            not self.in_flight
            and self.last_status in CONFIRMED_STATUSES
            and self.raw_hash is not None
            and self.raw_hash == raw_hash
            and self.mapping_fingerprint == mapping_fingerprint
        )


@attrs.frozen
class Confirmed:
    """One identity the platform confirmed: the store records exactly what was written.

    ``remote_id=None`` keeps the id already stored (a bulk import that returns none);
    ``raw_hash=None`` clears the fast path for this identity.
    """

    key: str
    fingerprint: str
    mapping_fingerprint: str
    status: str = attrs.field(converter=_text, validator=_status_in(CONFIRMED_STATUSES))
    remote_id: str | None = None
    raw_hash: str | None = None


@attrs.frozen
class FailedEntry:
    """One identity whose write was not confirmed. The stored fingerprint, raw hash
    and remote id are kept; the status makes the next run send it again."""

    key: str
    error_code: str | None = None
    status: str = attrs.field(
        default="failed", converter=_text, validator=_status_in(UNCONFIRMED_STATUSES)
    )


@attrs.frozen
class RunInfo:
    run_id: str
    tenant: str
    started_at: datetime.datetime
    finished_at: datetime.datetime | None
    """``None`` while running, or when the run was killed."""
    mapping_fingerprint: str | None
    counts: Mapping[str, int] | None


@attrs.frozen
class StateSummary:
    tenant: str
    records: int
    by_status: Mapping[str, int]
    """Records by last status (:data:`NEVER_CONFIRMED` for markers only)."""
    in_flight: int
    mapping_fingerprint: str | None
    """The tenant's mapping fingerprint as of its last run."""
    last_run: RunInfo | None
