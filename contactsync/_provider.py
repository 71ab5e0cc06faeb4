"""The interface every platform implements.

A provider is sans-IO: it never touches the network. It maps each contact to a
payload (:meth:`Provider.prepare`), and drives one batch of payloads through a
*flow*: a generator that yields :class:`Request` (or :class:`Sleep`) steps and is
sent back a :class:`Response` for each request. The same flow then runs under
the sync engine, the async engine, the planner and unit tests fed canned
responses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeAlias, TypeVar

import attrs

from ._errors import ContactError, UnsupportedFeature
from ._model import ChangeMode, Contact, Subscription
from ._outcome import Outcome

if TYPE_CHECKING:
    import httpx

    from ._config import Tenant
    from ._emulator import Emulator

PayloadT = TypeVar("PayloadT")


@attrs.frozen
class Capabilities:
    """What a platform can express; published by ``contactsync providers``."""

    max_batch_size: int = 1
    identity_keys: tuple[str, ...] = ("external_id",)
    """Contact fields the platform matches existing contacts on, in priority order."""
    email_statuses: frozenset[Subscription] = frozenset()
    sms_statuses: frozenset[Subscription] = frozenset()
    group_modes: frozenset[ChangeMode] = frozenset()
    tag_modes: frozenset[ChangeMode] = frozenset()
    channels: frozenset[str] = frozenset({"email"})
    custom_fields: bool = False
    requests_per_second: float | None = None
    """The platform's documented rate limit; ``None`` when it documents none."""
    default_concurrency: int = 4
    distinguishes_created: bool = True
    """Whether the platform says if a write created the contact; when it does not,
    successful writes are reported as ``updated``."""

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, frozenset):
                return sorted(str(v) for v in value)
            if isinstance(value, tuple):
                return list(value)
            return value

        return {a.name: plain(getattr(self, a.name)) for a in attrs.fields(Capabilities)}


def _lower_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    return {k.lower(): v for k, v in headers.items()}


@attrs.frozen
class Response:
    """An HTTP response as a flow sees it (header names in lower case)."""

    status_code: int
    content: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_lower_headers)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is empty or not JSON."""
        if not self.content:
            return None
        try:
            return json.loads(self.content)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


@attrs.frozen
class Request:
    """One HTTP request a flow wants sent."""

    method: str
    path: str
    """Relative to the tenant's base URL, query string included."""
    json: Any = None
    contacts: tuple[int, ...] = ()
    """Input indexes of the contacts this request concerns (shown by ``plan``)."""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    retry: bool = True
    """Whether the engine may resend it on 429 / 5xx / transport errors."""
    plan_response: Response | None = None
    """What ``plan`` assumes was answered, so it can show later steps; ``None`` ends it."""


@attrs.frozen
class Sleep:
    """Wait before the next step (e.g. between polls of an import session)."""

    seconds: float


Step: TypeAlias = Request | Sleep
Flow: TypeAlias = Generator[Step, Response | None, Sequence[Outcome]]


@attrs.frozen
class Prepared(Generic[PayloadT]):
    """A contact accepted by a provider's mapping, waiting to be sent."""

    index: int
    contact: Contact
    payload: PayloadT
    warnings: tuple[str, ...] = ()


class MappingContext:
    """Per-contact helpers a provider's ``prepare`` uses to report what it cannot map."""

    __slots__ = ("_provider", "_tenant", "warnings")

    def __init__(self, provider: str, tenant: Tenant) -> None:
        self._provider = provider
        self._tenant = tenant
        self.warnings: list[str] = []

    def unsupported(self, feature: str) -> None:
        """Raise :class:`UnsupportedFeature`, or record a warning if the tenant allows it."""
        if self._tenant.on_unsupported == "warn":
            self.warnings.append(f"{self._provider} cannot express {feature}; it was not sent")
            return
        raise UnsupportedFeature(self._provider, feature)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def custom_field_id(self, name: str) -> str | int:
        try:
            return self._tenant.custom_fields[name]
        except KeyError:
            raise ContactError(
                f"custom_fields.{name}",
                f"no platform field is mapped to it in tenants.{self._tenant.name}.custom_fields",
            ) from None

    def group_id(self, name: str, field: str = "groups") -> str | int:
        try:
            return self._tenant.groups[name]
        except KeyError:
            raise ContactError(
                f"{field}.{name}",
                f"no platform group is mapped to it in tenants.{self._tenant.name}.groups",
            ) from None


@attrs.frozen
class NoOptions:
    """Settings of a provider that takes no tenant options."""


@attrs.frozen
class NoCredentials:
    """Credentials of a provider that needs none."""


class Provider(Generic[PayloadT]):
    """Base class of every provider: everything not overridden is unsupported."""

    name: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    settings_type: ClassVar[type[Any]] = NoOptions
    """attrs class structured from the tenant's ``options`` table."""
    credentials_type: ClassVar[type[Any]] = NoCredentials
    """attrs class structured from the tenant's ``credentials`` table (use ``Secret`` fields)."""
    default_base_url: ClassVar[str] = ""
    secret_headers: ClassVar[frozenset[str]] = frozenset({"authorization"})
    """Lower-case header names that carry credentials: masked in plans, scrubbed in cassettes."""
    secret_body_keys: ClassVar[frozenset[str]] = frozenset()
    """JSON keys (at any depth, requests and responses) that carry credentials."""
    secret_query_params: ClassVar[frozenset[str]] = frozenset()
    """Query parameters that carry credentials."""
    implemented: ClassVar[bool] = True
    """``False`` for a registered provider whose mapping is not built yet."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant

    # --- configuration ------------------------------------------------------------------

    @classmethod
    def base_url_for(cls, settings: Any) -> str:
        """The base URL used when the tenant sets none (e.g. chosen by a region option)."""
        return cls.default_base_url

    @classmethod
    def check_tenant(cls, tenant: Tenant) -> None:
        """Raise :class:`ConfigError` (with its path) for options this provider rejects."""

    # --- requests -----------------------------------------------------------------------

    def auth(self) -> httpx.Auth | None:
        return None

    def prepare(self, contact: Contact, ctx: MappingContext) -> PayloadT:
        """Check and map one contact; raise ``ContactError`` or ``UnsupportedFeature``."""
        raise UnsupportedFeature(self.name, "upserting contacts")

    def batch_size(self) -> int:
        """Contacts per flow for this tenant (at most ``capabilities.max_batch_size``)."""
        return self.capabilities.max_batch_size

    def setup(self) -> Generator[Step, Response | None, None] | None:
        """A flow run once before the first contact is prepared (e.g. to read field
        definitions), or ``None``. Not run by ``plan``."""
        return None

    def batch_key(self, item: Prepared[PayloadT]) -> Hashable:
        """Items with different keys never share a batch."""
        return None

    def upsert(self, batch: Sequence[Prepared[PayloadT]]) -> Flow:
        """The flow that writes ``batch`` and returns one outcome per item."""
        raise UnsupportedFeature(self.name, "upserting contacts")

    def is_retryable(self, response: Response) -> bool:
        return response.status_code == 429 or response.status_code >= 500

    # --- emulator -----------------------------------------------------------------------

    demo_credentials: ClassVar[Mapping[str, str]] = {}
    """Credentials the emulator always accepts (documented, never real)."""
    demo_options: ClassVar[Mapping[str, Any]] = {}
    """Options an emulator tenant gets unless it sets them (e.g. the emulator's account id)."""

    @classmethod
    def create_emulator(cls, tenant: Tenant | None = None) -> Emulator:
        """An emulator that accepts ``tenant``'s credentials (and always the demo ones),
        set up the way that tenant's account is configured (its groups, fields)."""
        raise UnsupportedFeature(cls.name, "an emulator")


OnUnsupported: TypeAlias = Literal["error", "warn"]

OneFlow: TypeAlias = Generator[Step, Response | None, Outcome]


def each(batch: Sequence[Prepared[PayloadT]], one: Callable[[Prepared[PayloadT]], OneFlow]) -> Flow:
    """A batch flow that runs ``one``'s flow for each item in turn (providers whose
    platform takes one contact per call)."""
    outcomes = []
    for item in batch:
        outcomes.append((yield from one(item)))
    return outcomes
