"""contactsync: one contact model, one upsert call, many marketing platforms.

This is the application's API. Writing a provider: :mod:`contactsync.provider`.
Testing offline (emulators, faults, cassettes): :mod:`contactsync.testing`.
"""

# First: the command line's signals from its first moment (a no-op on import as a library).
from . import _early  # noqa: F401, I001

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from ._config import Config, load_config
from ._errors import (
    BatchRefused,
    ClientClosed,
    ConfigError,
    ContactError,
    ContactsyncError,
    ProviderNotFound,
    RequestFailed,
    UnsupportedFeature,
)
from ._lazy import lazy_attributes
from ._model import Address, ChangeMode, Contact, CustomValue, MembershipChange, Subscription
from ._outcome import ErrorCode, Outcome, OutcomeError, SkipReason, Status, Summary
from ._records import contact_from_record, contact_to_record
from ._secret import Secret
from ._tenant import HttpSettings, Tenant

__all__ = [
    "Address",
    "AsyncClient",
    "AsyncRun",
    "BatchRefused",
    "ChangeMode",
    "Client",
    "ClientClosed",
    "Config",
    "ConfigError",
    "Contact",
    "ContactError",
    "ContactsyncError",
    "CustomValue",
    "ErrorCode",
    "HttpSettings",
    "MembershipChange",
    "Outcome",
    "OutcomeError",
    "PlannedRequest",
    "ProviderNotFound",
    "RequestFailed",
    "Run",
    "Secret",
    "SkipReason",
    "Status",
    "Subscription",
    "Summary",
    "Tenant",
    "TenantLocked",
    "UnsupportedFeature",
    "contact_from_record",
    "contact_to_record",
    "load_config",
]

__version__ = "0.1.0"

# The clients and plans need httpx; load them on first use so that `import
# contactsync` (the model and the config) stays light.
_LAZY = {
    "AsyncClient": "._client",
    "AsyncRun": "._client",
    "Client": "._client",
    "Run": "._client",
    "PlannedRequest": "._plan",
    "TenantLocked": "._state",
}

# Names that used to be exported here, and the face that has them now. They stay
# importable (with a DeprecationWarning) for one release.
_MOVED = {
    **dict.fromkeys(
        (
            "Capabilities",
            "Flow",
            "MappingContext",
            "NoCredentials",
            "NoOptions",
            "Prepared",
            "Provider",
            "RateLimit",
            "Registry",
            "Request",
            "Response",
            "Sleep",
            "default_registry",
            "each",
            "failed_outcome",
            "identity_keys",
            "register",
        ),
        "contactsync.provider",
    ),
    **dict.fromkeys(
        ("Emulator", "EmulatorApp", "EmulatorTransport", "Faults", "WindowLimit"),
        "contactsync.testing",
    ),
}


if TYPE_CHECKING:
    from ._client import AsyncClient, AsyncRun, Client, Run
    from ._plan import PlannedRequest
    from ._state import TenantLocked


_lazy = lazy_attributes(__name__, _LAZY, globals())


def __getattr__(name: str) -> Any:
    moved = _MOVED.get(name)
    if moved is None:
        return _lazy(name)
    warnings.warn(
        f"contactsync.{name} is deprecated; import it from {moved}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(moved), name)
