"""The provider SDK: everything a platform's package uses, and nothing an app needs.

An app imports :mod:`contactsync`; a provider package imports this module (its
emulator imports :mod:`contactsync.testing`). The names here are stable and documented
in *Writing a provider*. A provider is sans-IO: it builds :class:`Request` steps and
reads :class:`Response` objects; the engine sends them.
"""

from ._discovery import RemoteField, RemoteGroup
from ._errors import (
    BatchRefused,
    ConfigError,
    ContactError,
    RequestFailed,
    UnsupportedFeature,
)
from ._field_types import FieldType
from ._helpers import (
    already_ascii,
    failed,
    idna_email,
    numeric_remote_id,
    passthrough_options,
    platform_error,
    street,
)
from ._model import Address, ChangeMode, Contact, CustomValue, MembershipChange, Subscription
from ._outcome import ErrorCode, Outcome, OutcomeError, SkipReason, Status
from ._provider import (
    AccountKey,
    Capabilities,
    Flow,
    Known,
    MappingContext,
    NoCredentials,
    NoOptions,
    Prepared,
    Provider,
    Recall,
    Request,
    Response,
    Sleep,
    Steps,
    each,
    failed_outcome,
    identity_keys,
    recalled,
    record_keys,
)
from ._ratelimit import RateLimit
from ._registry import ENTRY_POINT_GROUP, Registry, default_registry, register
from ._secret import Secret
from ._tenant import SyncMode, Tenant

__all__ = [
    "ENTRY_POINT_GROUP",
    "AccountKey",
    "Address",
    "BatchRefused",
    "Capabilities",
    "ChangeMode",
    "ConfigError",
    "Contact",
    "ContactError",
    "CustomValue",
    "ErrorCode",
    "FieldType",
    "Flow",
    "Known",
    "MappingContext",
    "MembershipChange",
    "NoCredentials",
    "NoOptions",
    "Outcome",
    "OutcomeError",
    "Prepared",
    "Provider",
    "RateLimit",
    "Recall",
    "Registry",
    "RemoteField",
    "RemoteGroup",
    "Request",
    "RequestFailed",
    "Response",
    "Secret",
    "SkipReason",
    "Sleep",
    "Status",
    "Steps",
    "Subscription",
    "SyncMode",
    "Tenant",
    "UnsupportedFeature",
    "already_ascii",
    "default_registry",
    "each",
    "failed",
    "failed_outcome",
    "identity_keys",
    "idna_email",
    "numeric_remote_id",
    "passthrough_options",
    "platform_error",
    "recalled",
    "record_keys",
    "register",
    "street",
]
