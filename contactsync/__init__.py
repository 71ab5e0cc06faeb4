"""contactsync: one contact model, one upsert call, many marketing platforms."""

from typing import TYPE_CHECKING

from ._config import Config, HttpSettings, Tenant, load_config
from ._errors import (
    BatchRefused,
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
from ._provider import (
    Capabilities,
    Flow,
    Known,
    MappingContext,
    NoCredentials,
    NoOptions,
    Prepared,
    Provider,
    Request,
    Response,
    Sleep,
    each,
    failed_outcome,
    identity_keys,
)
from ._ratelimit import RateLimit
from ._records import contact_from_record, contact_to_record
from ._registry import Registry, default_registry, register
from ._secret import Secret

__all__ = [
    "Address",
    "AsyncClient",
    "AsyncRun",
    "BatchRefused",
    "Capabilities",
    "ChangeMode",
    "Client",
    "Config",
    "ConfigError",
    "Contact",
    "ContactError",
    "ContactsyncError",
    "CustomValue",
    "Emulator",
    "EmulatorApp",
    "EmulatorTransport",
    "ErrorCode",
    "Faults",
    "Flow",
    "HttpSettings",
    "Known",
    "MappingContext",
    "MembershipChange",
    "NoCredentials",
    "NoOptions",
    "Outcome",
    "OutcomeError",
    "PlannedRequest",
    "Prepared",
    "Provider",
    "ProviderNotFound",
    "RateLimit",
    "Registry",
    "Request",
    "RequestFailed",
    "Response",
    "Run",
    "Secret",
    "SkipReason",
    "Sleep",
    "Status",
    "Subscription",
    "Summary",
    "Tenant",
    "UnsupportedFeature",
    "WindowLimit",
    "contact_from_record",
    "contact_to_record",
    "default_registry",
    "each",
    "failed_outcome",
    "identity_keys",
    "load_config",
    "register",
]

__version__ = "0.1.0"

# The clients, the emulator harness and plans need httpx; load them on first use so
# that `import contactsync` (the model, config and provider interface) stays light.
_LAZY = {
    "AsyncClient": "._client",
    "AsyncRun": "._client",
    "Client": "._client",
    "Run": "._client",
    "Emulator": "._emulator",
    "EmulatorApp": "._emulator",
    "EmulatorTransport": "._emulator",
    "Faults": "._emulator",
    "WindowLimit": "._emulator",
    "PlannedRequest": "._plan",
}


if TYPE_CHECKING:
    from ._client import AsyncClient, AsyncRun, Client, Run
    from ._emulator import Emulator, EmulatorApp, EmulatorTransport, Faults, WindowLimit
    from ._plan import PlannedRequest


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
