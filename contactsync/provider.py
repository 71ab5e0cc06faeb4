"""The provider SDK: everything a platform's package uses, and nothing an app needs.

An app imports :mod:`contactsync`; a provider package imports this module (its
emulator imports :mod:`contactsync.testing`). The names here are stable and documented
in *Writing a provider*. A provider is sans-IO: it builds :class:`Request` steps and
reads :class:`Response` objects; the engine sends them.
"""

from ._config import Tenant
from ._errors import (
    BatchRefused,
    ConfigError,
    ContactError,
    RequestFailed,
    UnsupportedFeature,
)
from ._model import Address, ChangeMode, Contact, CustomValue, MembershipChange, Subscription
from ._outcome import ErrorCode, Outcome, OutcomeError, Status
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
    failed_outcome,
    identity_keys,
)
from ._ratelimit import RateLimit
from ._registry import ENTRY_POINT_GROUP, Registry, default_registry, register
from ._secret import Secret

__all__ = [
    "ENTRY_POINT_GROUP",
    "Address",
    "BatchRefused",
    "Capabilities",
    "ChangeMode",
    "ConfigError",
    "Contact",
    "ContactError",
    "CustomValue",
    "ErrorCode",
    "Flow",
    "MappingContext",
    "MembershipChange",
    "NoCredentials",
    "NoOptions",
    "Outcome",
    "OutcomeError",
    "Prepared",
    "Provider",
    "RateLimit",
    "Registry",
    "Request",
    "RequestFailed",
    "Response",
    "Secret",
    "Sleep",
    "Status",
    "Subscription",
    "Tenant",
    "UnsupportedFeature",
    "default_registry",
    "each",
    "failed_outcome",
    "identity_keys",
    "register",
]
