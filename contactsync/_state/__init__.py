"""Incremental sync state: per tenant and identity, what was last confirmed written.

See ``docs/incremental.md``. The engine asks :meth:`StateStore.get_many` before
mapping or sending, skips identities whose :meth:`StateRecord.is_current` holds,
marks the rest in flight, and confirms (or records the failure of) each one once the
platform answered.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from ._errors import ReadOnlyStore, StateError, StateSchemaError, TenantLocked
from ._hash import fingerprint, raw_hash
from ._types import (
    CONFIRMED_STATUSES,
    NEVER_CONFIRMED,
    UNCONFIRMED_STATUSES,
    Confirmed,
    FailedEntry,
    RunInfo,
    StateRecord,
    StateSummary,
    TenantAccount,
)

if TYPE_CHECKING:
    from ._schema import SCHEMA_VERSION
    from ._store import StateStore, open_store

# The store and its schema need SQLAlchemy: loaded on first use, so that a client
# without a state store never imports it.
_LAZY = {"StateStore": "._store", "open_store": "._store", "SCHEMA_VERSION": "._schema"}


__getattr__ = lazy_attributes(__name__, _LAZY, globals())


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
    "TenantAccount",
    "TenantLocked",
    "fingerprint",
    "open_store",
    "raw_hash",
]
