"""The interface every platform implements.

A provider is sans-IO: it never touches the network. It maps each contact to a
payload (:meth:`Provider.prepare`), and drives one batch of payloads through a
*flow*: a generator that yields :class:`Request` (or :class:`Sleep`) steps and is
sent back a :class:`Response` for each request. The same flow then runs under
the sync engine, the async engine, the planner and unit tests fed canned
responses.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Generator, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias, TypeVar

import attrs

from ._errors import ContactError, RequestFailed, UnsupportedFeature
from ._model import ChangeMode, Contact, Subscription
from ._outcome import Outcome, OutcomeError, Status
from ._ratelimit import RateLimit
from ._secret import Secret
from ._tenant import SyncMode, Tenant

if TYPE_CHECKING:
    import httpx

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
    rate_limits: tuple[RateLimit, ...] = ()
    """The platform's documented rate limits (each enforced per tenant, exactly, in
    every window); empty when it documents none."""
    default_concurrency: int = 4
    distinguishes_created: bool = True
    """Whether the platform's answer (or a look-up the provider makes anyway) says if a
    write created the contact. When it does not, the provider reports ``created`` or
    ``updated`` only where a look-up made in the run proved which, and ``written``
    otherwise (its ``write_statuses`` then name all three)."""
    write_statuses: frozenset[Status] = attrs.field(
        default=attrs.Factory(
            lambda caps: (
                frozenset({Status.CREATED, Status.UPDATED})
                if caps.distinguishes_created
                else frozenset({Status.WRITTEN})
            ),
            takes_self=True,
        )
    )
    """The statuses a successful write may be reported with (``created``, ``updated``,
    ``written``); the provider's page says when each. By default ``created`` and
    ``updated`` when ``distinguishes_created``, else ``written``."""

    @write_statuses.validator
    def _check_write_statuses(self, _: Any, value: frozenset[Status]) -> None:
        allowed = {Status.CREATED, Status.UPDATED, Status.WRITTEN}
        if not value or not value <= allowed:
            raise ValueError(
                "write_statuses must name some of created, updated, written; got "
                + ", ".join(sorted(str(v) for v in value))
            )

    sync_modes: frozenset[SyncMode] = frozenset({"upsert"})
    """The tenant ``sync_mode`` values the provider can honour. ``create_only`` and
    ``update_only`` need to know whether a contact exists before writing it: a
    provider lists them only when it can find out cheaply (a look-up per contact)."""
    fields: frozenset[str] = frozenset()
    """The neutral fields the provider maps (names as in ``contactsync providers``;
    address parts dotted, ``address.city``). Core rejects a contact that sets any other
    (or, with ``on_unsupported = "warn"``, clears it with a warning) before ``prepare``
    sees it."""
    field_notes: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    """Why a field is not mapped, or what to do instead, shown in the rejection."""

    def to_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, frozenset):
                return sorted(str(v) for v in value)
            if isinstance(value, tuple):
                return [str(v) if isinstance(v, RateLimit) else v for v in value]
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
    safe_to_resend: bool = True
    """Whether sending it twice has the effect of sending it once. 429 and 503 are
    resent whatever this says (the platform did not apply them); a lost response, a
    transport error after the request went out, or another 5xx is resent only when
    this is true. Otherwise the flow gets ``RequestFailed(maybe_applied=True)`` and
    reconciles (looks the contact up) or reports ``outcome_unknown``."""
    read_only: bool = False
    """It changes nothing on the platform (a look-up); ``GET`` always counts as one.
    ``plan`` sends a provider's setup requests only when they are read-only."""
    plan_response: Response | None = None
    """What ``plan`` assumes was answered, so it can show later steps; ``None`` ends it."""

    @property
    def is_read_only(self) -> bool:
        return self.read_only or self.method == "GET"


@attrs.frozen
class Sleep:
    """Wait before the next step (e.g. between polls of an import session)."""

    seconds: float


@attrs.frozen
class Recall:
    """Ask the run which identities it ties a platform id to: the state keys the state
    store confirmed with that id, and those an earlier row of this run obtained it for
    (e.g. before writing to a record a look-up found by email, to learn whether it
    belongs to another external id). Nothing is sent to the platform. The flow is
    sent a :class:`Response`: 200 with a JSON list of state keys (``["external_id=u1"]``;
    empty when nothing is known, or when the run has no state store and no earlier row
    of this run obtained the id)."""

    remote_id: str
    contacts: tuple[int, ...] = ()
    """Input indexes of the contacts it concerns."""


def recalled(response: Response | None) -> tuple[str, ...]:
    """The state keys in the answer to a :class:`Recall`."""
    keys = None if response is None else response.json()
    if not isinstance(keys, list):
        return ()
    return tuple(str(key) for key in keys)


NOTHING_RECALLED = Response(200, b"[]")
"""The answer to a :class:`Recall` where no state is kept (plans, read-only flows)."""

Step: TypeAlias = Request | Sleep | Recall
ReturnT = TypeVar("ReturnT")
Steps: TypeAlias = Generator[Step, Response | None, ReturnT]
"""A part of a flow, run with ``yield from``: it yields requests and sleeps, is sent
each request's response, and returns a ``ReturnT``. One contact's flow, as
:func:`each` runs it, is ``Steps[Outcome]``; a provider's ``setup`` is ``Steps[None]``."""
Flow: TypeAlias = Generator[Step | Outcome, Response | None, Sequence[Outcome]]
"""A provider flow. It yields requests (sent back their response), sleeps, and
outcomes: an outcome yielded is final for that contact as soon as it is yielded (a
later failure of the same flow never rewrites it), and lets the engine start the next
row for the same person. What the flow returns completes the rest."""


@attrs.frozen
class Known:
    """What the state store holds about a contact's record on the platform: it was
    written there before (confirmed), with this id when the platform gave one."""

    remote_id: str | None = None
    """The platform's id last confirmed for this identity. It may be stale (the record
    was deleted on the platform since): a provider that writes by it must notice the
    platform saying the id does not exist, and find the contact again."""


@attrs.frozen
class Prepared(Generic[PayloadT]):
    """A contact accepted by a provider's mapping, waiting to be sent."""

    index: int
    contact: Contact
    payload: PayloadT
    warnings: tuple[str, ...] = ()
    identity: tuple[str, ...] = ()
    """The keys the platform will match this contact on (``"email=ann@example.com"``).
    The engine never has two contacts sharing a key in flight, and applies them in
    input order."""
    known: Known | None = None
    """What is known of this identity's record: the id an earlier row of the same
    person obtained in this run (with or without a state store), else what the store
    confirmed before (the identity map); ``None`` when neither knows anything."""
    in_doubt: bool = False
    """The state store holds no id for this identity, but an earlier run sent it and
    never learnt whether the platform applied it (the run was killed while it was in
    flight, or its answer was lost: ``outcome_unknown``). The platform may hold a
    record the store does not know: a provider whose create is not idempotent looks
    the contact up before creating it."""


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
class AccountKey:
    """What tells one platform account from another, besides the host a tenant's
    requests go to (see :meth:`Provider.account_key`)."""

    selector: str = ""
    """A non-secret account selector the requests carry (e.g. an app id in every body);
    empty when the credentials alone select the account."""
    secrets: tuple[str, ...] = attrs.field(default=(), repr=False)
    """The credentials that select the account. Only a one-way fingerprint of them is
    ever kept (docs/incremental.md); they are never stored nor shown."""


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
    options_type: ClassVar[type[Any]] = NoOptions
    """attrs class structured from the tenant's ``options`` table (``Tenant.options``)."""
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
    uses_known_ids: ClassVar[bool] = True
    """Whether its flows read ``Prepared.known`` or yield :class:`Recall`. The run then
    keeps the platform id each row obtained (by its state key) for the person's later
    rows; a provider that does neither sets ``False`` and saves working out a key for
    every contact."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        old = cls.__dict__.get("settings_type")
        if old is not None:  # the old name, kept for one release
            warnings.warn(
                f"{cls.__qualname__}.settings_type is deprecated; name it options_type",
                DeprecationWarning,
                stacklevel=2,
            )
            cls.options_type = old

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant

    # --- configuration ------------------------------------------------------------------

    @classmethod
    def base_url_for(cls, options: Any) -> str:
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

    def setup(self) -> Steps[None] | None:
        """A flow run before the first contact is prepared (e.g. to read field
        definitions), or ``None``. It runs again on the next upsert after a failure;
        ``plan`` sends its requests only when all are read-only (``Request.read_only``)."""
        return None

    # --- discovery (read-only) ------------------------------------------------------------

    def check_credentials(self) -> Steps[object] | None:
        """The cheapest authenticated read-only call, proving the credentials work
        (``contactsync check --online``); ``None`` if the platform has none."""
        return None

    def list_fields(self) -> Steps[Sequence[Any]] | None:
        """A read-only flow returning the account's custom fields (``RemoteField``),
        or ``None`` when the platform documents no listing."""
        return None

    def list_groups(self) -> Steps[Sequence[Any]] | None:
        """A read-only flow returning the account's groups (``RemoteGroup``), or
        ``None`` when the platform documents no listing."""
        return None

    # --- the platform account (a state store keeps remote ids per account) ---------------

    def account_key(self) -> AccountKey:
        """What selects the platform account besides the host: by default every
        :class:`Secret` of the tenant's credentials, in field order. A provider whose
        requests name the account (an app id) returns it as ``selector``."""
        credentials = self.tenant.credentials
        secrets: list[str] = []
        if attrs.has(type(credentials)):
            for field in attrs.fields(type(credentials)):
                value = getattr(credentials, field.name)
                if isinstance(value, Secret):
                    secrets.append(value.reveal())
        return AccountKey(secrets=tuple(secrets))

    def reported_account(self) -> Steps[str | None] | None:
        """A read-only flow returning the id the platform itself reports for the
        account the credentials reach, or ``None`` when it documents none. Where it
        has one, that id is the account (whatever the host and key)."""
        return None

    def read_back(self, remote_id: str, external_id: str) -> Steps[bool] | None:
        """A read-only flow: whether the record ``remote_id`` exists and carries
        ``external_id`` (the tenant's credentials reach the account that stored it).
        ``None`` when the platform cannot tell; then a new key is always a new account."""
        return None

    def identity(self, contact: Contact, payload: PayloadT) -> tuple[str, ...]:
        """The keys the platform may match ``contact`` on. By default one key per entry
        of ``capabilities.identity_keys`` the contact fills (``"first_name+email"`` needs
        both). Returning more keys than the platform uses is safe (it only serializes
        more); returning fewer risks two writes to one person at once."""
        return identity_keys(contact, self.capabilities.identity_keys)

    def state_key(self, item: Prepared[PayloadT]) -> str | None:
        """The key the state store records this contact under: its external id when it
        has one, else its first identity key. A provider whose platform matches on
        more than its identity keys say (e.g. email *and* first name) returns a key
        naming all of it, so that a known record means the very record a write lands on."""
        keys = record_keys(item.contact, ("external_id", *self.capabilities.identity_keys))
        return keys[0] if keys else None

    def batch_key(self, item: Prepared[PayloadT]) -> Hashable:
        """Items with different keys never share a batch."""
        return None

    def upsert(self, batch: Sequence[Prepared[PayloadT]]) -> Flow:
        """The flow that writes ``batch`` and returns one outcome per item."""
        raise UnsupportedFeature(self.name, "upserting contacts")

    def is_retryable(self, response: Response) -> bool:
        """Whether the answer is a temporary refusal worth sending again."""
        return response.status_code == 429 or response.status_code >= 500

    def is_auth_failure(self, response: Response) -> bool:
        """Whether the platform refused the tenant's credentials (the run stops sending)."""
        return response.status_code in (401, 403)

    def auth_failure_hint(self, response: Response) -> str:
        """What to check after :meth:`is_auth_failure` (shown on every failed contact)."""
        return f"check tenants.{self.tenant.name}.credentials"

    def not_applied(self, response: Response) -> bool:
        """Whether a retryable answer certainly means the request was not applied, so it
        may be resent even when it is not safe to resend (429 and 503 by default)."""
        return response.status_code in (429, 503)

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


def identity_keys(contact: Contact, specs: Sequence[str]) -> tuple[str, ...]:
    """``"spec=value"`` for each spec (``"email"``, ``"first_name+email"``) whose fields
    are all set. Values are compared case-insensitively (casefolded: ``ß`` is ``ss``):
    these keys only keep one person's rows from being in flight together, and matching
    more is safe for that (two people who only look alike merely wait for each other).
    Never store a remote id under them: see :func:`record_keys`."""
    return _keys(contact, specs, fold_all=True)


def record_keys(contact: Contact, specs: Sequence[str]) -> tuple[str, ...]:
    """Like :func:`identity_keys`, but exact: the key a state store records a remote id
    under must name the very record a write lands on, so it never merges two values a
    platform could hold as two. External ids ``abc`` and ``ABC`` are two people until a
    platform documents otherwise (folding them together would hand one the other's
    platform id and overwrite that record). So are ``Ann@example.com`` and
    ``ann@example.com``, and ``straße@`` and ``strasse@``: no platform documents how it
    compares the part of an address before the ``@``, so it is kept as the contact holds
    it (normalized to NFC on input, never casefolded nor NFKC-folded); only the domain,
    case-insensitive by DNS, is lower-cased and IDNA-encoded (:func:`email_key`)."""
    return _keys(contact, specs, fold_all=False)


def email_key(address: str) -> str:
    """``address`` as an exact identity key: the local part unchanged, the domain
    lower-cased and IDNA-encoded (``Ann@Bücher.DE`` → ``Ann@xn--bcher-kva.de``), so that
    the two spellings of one domain are one key and nothing else is merged."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    if domain.isascii():
        return local + "@" + domain.lower()
    return local + "@" + _ascii_domain(domain)


@functools.lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str:
    # IDNA 2008 with UTS 46 mapping, as email-validator encodes domains (``ß`` stays
    # ``ß``: ``straße.de`` and ``strasse.de`` are two domains). Imported here: only
    # internationalized domains need it.
    import idna  # noqa: PLC0415

    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:  # pragma: no cover - Contact.email holds checked domains
        return domain.lower()


def _keys(contact: Contact, specs: Sequence[str], *, fold_all: bool) -> tuple[str, ...]:
    keys = []
    for spec, parts in _key_plan(tuple(specs)):
        if len(parts) == 1:  # most specs name one field: no list, no join
            name, is_email = parts[0]
            value = getattr(contact, name, None)
            if value is not None and value != "":
                text = str(value).strip()
                if is_email:
                    text = email_key(text)
                keys.append(spec + "=" + (text.casefold() if fold_all else text))
            continue
        texts = []
        for name, is_email in parts:
            value = getattr(contact, name, None)
            if value is None or value == "":
                break
            text = str(value).strip()
            if is_email:
                text = email_key(text)
            texts.append(text.casefold() if fold_all else text)
        else:
            keys.append(spec + "=" + "\x1f".join(texts))
    return tuple(keys)


@functools.cache
def _key_plan(specs: tuple[str, ...]) -> tuple[tuple[str, tuple[tuple[str, bool], ...]], ...]:
    """Each spec with its fields, and whether each field is an email address (worked
    out once: every contact asks)."""
    return tuple(
        (spec, tuple((part, part == "email") for part in spec.split("+"))) for spec in specs
    )


def failed_outcome(item: Prepared[Any], exc: RequestFailed) -> Outcome:
    """The outcome of ``item`` when a request of its flow failed with ``exc``."""
    return Outcome(
        item.index,
        Status.FAILED,
        error=OutcomeError(
            exc.code, str(exc), status_code=exc.status_code, retryable=exc.retryable
        ),
    )


def each(
    batch: Sequence[Prepared[PayloadT]], one: Callable[[Prepared[PayloadT]], Steps[Outcome]]
) -> Flow:
    """A batch flow that runs ``one``'s flow for each item in turn (providers whose
    platform takes one contact per call). Each outcome is reported as soon as it is
    known, and a request failing for one item fails that item only."""
    for item in batch:
        try:
            outcome = yield from one(item)
        except RequestFailed as exc:
            outcome = failed_outcome(item, exc)
        yield outcome
    return ()
