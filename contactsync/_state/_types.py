"""What the state store holds and takes: plain frozen values."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Final, NamedTuple

import attrs

CONFIRMED_STATUSES: Final = frozenset({"created", "updated", "written", "unchanged"})
"""Statuses a :class:`Confirmed` entry may carry: the platform holds the payload."""

UNCONFIRMED_STATUSES: Final = frozenset({"failed", "rejected", "skipped"})
"""Statuses a :class:`FailedEntry` may carry: nothing new was confirmed written."""

NEVER_CONFIRMED: Final = "never_confirmed"
"""The :attr:`StateSummary.by_status` key of records that were only marked in flight."""


def check_status(status: str, allowed: frozenset[str], what: str) -> str:
    """``status`` as plain text (a ``str`` enum gives its value), or :class:`ValueError`."""
    text = str(status)
    if text not in allowed:
        raise ValueError(f"{what} status must be one of {sorted(allowed)}, not {text!r}")
    return text


class StateRecord(NamedTuple):
    """What the store knows about one identity of one tenant.

    A named tuple rather than an attrs class: :meth:`StateStore.get_many` builds
    thousands of them per call, and a tuple is five times cheaper to make.
    """

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
    """created / updated / written / unchanged / skipped / rejected / failed, or ``None`` when the
    identity was marked in flight and never confirmed nor failed."""
    last_error_code: str | None
    in_flight: bool
    """Marked before sending and not yet confirmed or failed: a run was killed while
    it was being written, so the platform may or may not hold the new payload."""
    run_id: str | None
    """The run that last marked this identity in flight."""
    updated_at: datetime.datetime
    order_run: int | None = None
    """The sequence number (:meth:`StateStore.begin_ordered_run`) of the run whose row
    the confirmed data came from; ``None`` when not known (confirmed before version 2)."""
    order_index: int | None = None
    """That row's input position in its run."""

    def newer_than(self, order: tuple[int, int]) -> bool:
        """Whether the confirmed data came from a row after the one ``order`` names
        (run sequence, input position): sending that row would put older data back."""
        if self.order_run is None or self.order_index is None:
            return False
        return (self.order_run, self.order_index) > order

    account: str | None = None
    """The platform account (:func:`contactsync._account.account_id`) that
    ``remote_id`` and the confirmation belong to; ``None`` for a record written before
    accounts were recorded. A run for another account treats the record as absent."""

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


class Confirmed(NamedTuple):
    """One identity the platform confirmed: the store records exactly what was written.

    ``status`` is one of :data:`CONFIRMED_STATUSES` (checked by
    :meth:`StateStore.confirm`). ``remote_id=None`` keeps the id already stored (a bulk
    import that returns none); ``raw_hash=None`` clears the fast path for this identity.
    A named tuple: the engine makes one per contact, and a tuple is cheap to make.
    """

    key: str
    fingerprint: str
    mapping_fingerprint: str
    status: str
    remote_id: str | None = None
    raw_hash: str | None = None
    order: tuple[int, int] | None = None
    """The confirmed row's run sequence and input position; ``None`` keeps the stored one."""


class FailedEntry(NamedTuple):
    """One identity whose write was not confirmed. The stored fingerprint, raw hash
    and remote id are kept; the status makes the next run send it again.

    ``status`` is one of :data:`UNCONFIRMED_STATUSES` (checked by
    :meth:`StateStore.record_failure`)."""

    key: str
    error_code: str | None = None
    status: str = "failed"


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


class TenantAccount(NamedTuple):
    """What the store recorded about a tenant's platform account."""

    account: str | None
    """The account of the tenant's last run; ``None`` before accounts were recorded."""
    name: str | None
    """The tenant's ``account`` name at that run."""
    mapping_fingerprint: str | None
    """The tenant's mapping fingerprint as of its last run."""
