"""contactsync: one contact model, one upsert call, many marketing platforms."""

from ._client import AsyncClient, AsyncRun, Client, Run
from ._config import Config, HttpSettings, Tenant, load_config
from ._emulator import Emulator, EmulatorApp, EmulatorTransport, Faults
from ._errors import (
    ConfigError,
    ContactError,
    ContactsyncError,
    ProviderNotFound,
    RequestFailed,
    UnsupportedFeature,
)
from ._model import Address, ChangeMode, Contact, CustomValue, MembershipChange, Subscription
from ._outcome import Outcome, OutcomeError, Status, Summary
from ._plan import PlannedRequest
from ._provider import (
    Capabilities,
    Flow,
    MappingContext,
    NoCredentials,
    NoOptions,
    Prepared,
    Provider,
    Request,
    Response,
    Sleep,
    each,
)
from ._records import contact_from_record, contact_to_record
from ._registry import Registry, default_registry, register
from ._secret import Secret

__all__ = [
    "Address",
    "AsyncClient",
    "AsyncRun",
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
    "Faults",
    "Flow",
    "HttpSettings",
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
    "Registry",
    "Request",
    "RequestFailed",
    "Response",
    "Run",
    "Secret",
    "Sleep",
    "Status",
    "Subscription",
    "Summary",
    "Tenant",
    "UnsupportedFeature",
    "contact_from_record",
    "contact_to_record",
    "default_registry",
    "each",
    "load_config",
    "register",
]

__version__ = "0.1.0"
