"""Incremental sync state: per tenant and identity, what was last confirmed written.

See ``docs/incremental.md``. The engine asks :meth:`StateStore.get_many` before
mapping or sending, skips identities whose :meth:`StateRecord.is_current` holds,
marks the rest in flight, and confirms (or records the failure of) each one once the
platform answered.
"""

from ._errors import ReadOnlyStore, StateError, StateSchemaError
from ._hash import fingerprint, raw_hash
from ._schema import SCHEMA_VERSION
from ._store import StateStore, open_store
from ._types import (
    CONFIRMED_STATUSES,
    NEVER_CONFIRMED,
    UNCONFIRMED_STATUSES,
    Confirmed,
    FailedEntry,
    RunInfo,
    StateRecord,
    StateSummary,
)

__all__ = [
    "CONFIRMED_STATUSES",
    "NEVER_CONFIRMED",
    "SCHEMA_VERSION",
    "UNCONFIRMED_STATUSES",
    "Confirmed",
    "FailedEntry",
    "ReadOnlyStore",
    "RunInfo",
    "StateError",
    "StateRecord",
    "StateSchemaError",
    "StateStore",
    "StateSummary",
    "fingerprint",
    "open_store",
    "raw_hash",
]
