"""Errors of the state store. Their messages never hold a password."""

from __future__ import annotations

from contactsync._errors import ContactsyncError


class StateError(ContactsyncError):
    """The state store could not be opened, read or written."""


class StateSchemaError(StateError):
    """The store's schema is missing, older than this version needs (in read-only mode),
    or newer than this version of contactsync understands."""


class ReadOnlyStore(StateError):
    """A write was attempted on a store opened with ``read_only=True``."""


class TenantLocked(StateError):
    """Another run of the tenant holds its lock on this store (a second run would
    write the same people at once). ``run_id`` names the holder when it is known."""

    def __init__(self, message: str, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
