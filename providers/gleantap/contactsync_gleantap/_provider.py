"""The Gleantap provider: header auth, first-name identity safety, booleans, tags."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import ClassVar

import attrs
import httpx

from contactsync.provider import (
    AccountKey,
    Capabilities,
    ChangeMode,
    ConfigError,
    Contact,
    Flow,
    MappingContext,
    Prepared,
    Provider,
    Request,
    RequestFailed,
    Status,
    Steps,
    Subscription,
    Tenant,
    each,
    identity_keys,
    record_keys,
)

from ._emulator import DEMO_API_KEY, DEMO_APP_ID, DEMO_SECRET_KEY, GleantapEmulator
from ._flows import API, upsert_one
from ._mapping import ATTRIBUTE_NAME, DOCUMENTED, GleantapPayload, to_payload
from ._options import GleantapCredentials, GleantapOptions

PROBE_EMAIL = "contactsync-credential-check@example.invalid"


class HeaderAuth(httpx.Auth):
    """``X-API-KEY`` and ``X-SECRET-KEY`` on every request."""

    def __init__(self, credentials: GleantapCredentials) -> None:
        self._credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-API-KEY"] = self._credentials.api_key.reveal()
        request.headers["X-SECRET-KEY"] = self._credentials.secret_key.reveal()
        yield request


class GleantapProvider(Provider[GleantapPayload]):
    name = "gleantap"
    display_name = "Gleantap"
    default_base_url = "https://api.gleantap.com"
    credentials_type = GleantapCredentials
    options_type = GleantapOptions
    secret_headers = frozenset({"x-api-key", "x-secret-key"})
    demo_credentials: ClassVar[Mapping[str, str]] = {
        "api_key": DEMO_API_KEY,
        "secret_key": DEMO_SECRET_KEY,
    }
    demo_options: ClassVar[Mapping[str, str]] = {"app_id": DEMO_APP_ID}
    capabilities = Capabilities(
        max_batch_size=1,
        identity_keys=("external_id", "email+first_name", "phone+first_name"),
        email_statuses=frozenset({Subscription.SUBSCRIBED, Subscription.UNSUBSCRIBED}),
        sms_statuses=frozenset(
            {Subscription.SUBSCRIBED, Subscription.UNSUBSCRIBED, Subscription.PENDING}
        ),
        group_modes=frozenset(),
        tag_modes=frozenset({ChangeMode.ADD, ChangeMode.REMOVE}),
        channels=frozenset({"email", "sms"}),
        custom_fields=True,
        default_concurrency=8,
        distinguishes_created=False,
        # The answer is the same for a create and an update; the look-ups a run makes
        # (a new user_id, a contact without one, a sync mode) prove which, else written.
        write_statuses=frozenset({Status.CREATED, Status.UPDATED, Status.WRITTEN}),
        # getCustomers by user_id, email or phone says whether newContact would update.
        sync_modes=frozenset({"upsert", "create_only", "update_only"}),
        fields=frozenset(
            {
                "external_id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "address.line1",
                "address.line2",
                "address.city",
                "address.region",
                "address.postal_code",
                "email_status",
                "sms_status",
                "tags",
                "custom_fields",
                "birth_date",
                "provider_options",
            }
        ),
        field_notes={
            "groups": "Gleantap has tags, not groups",
            "address.country": "Gleantap's contact has no country",
            "remote_id": "newContact matches on user_id, email or phone, never on _id",
        },
    )

    def __init__(self, tenant: Tenant) -> None:
        super().__init__(tenant)
        self.options: GleantapOptions = tenant.options

    @classmethod
    def check_tenant(cls, tenant: Tenant) -> None:
        for name, key in tenant.custom_fields.items():
            if str(key) in DOCUMENTED:
                raise ConfigError(
                    f"tenants.{tenant.name}.custom_fields.{name}",
                    f"{key!r} is a field Gleantap documents, not a custom attribute",
                )
            if not ATTRIBUTE_NAME.match(str(key)):
                raise ConfigError(
                    f"tenants.{tenant.name}.custom_fields.{name}",
                    f"{key!r}: Gleantap attribute names are letters, digits and _",
                )

    def auth(self) -> httpx.Auth:
        return HeaderAuth(self.tenant.credentials)

    def account_key(self) -> AccountKey:
        # One key pair may serve several apps (undocumented either way): the app id
        # every request names is part of the account.
        return attrs.evolve(super().account_key(), selector=self.options.app_id)

    def read_back(self, remote_id: str, external_id: str) -> Steps[bool]:
        # getCustomers filters on _id and user_id together: a member comes back only
        # when this app holds that id with that user_id (members do not show user_id).
        body = {
            "app_id": self.options.app_id,
            "_id": remote_id,
            "user_id": external_id,
            "limit": 1,
            "offset": 0,
        }
        response = yield Request("POST", API + "getCustomers", json=body, read_only=True)
        assert response is not None
        if not response.is_success:
            return False
        members = (response.json() or {}).get("members") or []
        return any(isinstance(m, Mapping) and str(m.get("id")) == remote_id for m in members)

    def check_credentials(self) -> Steps[object]:
        # A look-up that matches no one (a reserved .invalid address): it proves the
        # key pair and the app id, and reads no customer's data.
        body = {"app_id": self.options.app_id, "email": PROBE_EMAIL, "limit": 1, "offset": 0}
        response = yield Request("POST", API + "getCustomers", json=body, read_only=True)
        assert response is not None
        if not response.is_success:
            raise RequestFailed(
                f"POST {API}getCustomers answered HTTP {response.status_code}",
                status_code=response.status_code,
                retryable=False,
            )
        return None

    # Gleantap documents no listing of custom attributes (its "Attribute List" page is
    # not available) and has tags, not groups: list_fields / list_groups stay None.

    def identity(self, contact: Contact, payload: GleantapPayload) -> tuple[str, ...]:
        # Broader than Gleantap's own rule (email or phone *plus first name*): the
        # look-up goes by email or phone alone, so rows sharing one must not overlap.
        return identity_keys(contact, ("external_id", "email", "phone"))

    def state_key(self, item: Prepared[GleantapPayload]) -> str | None:
        # Without an external id, Gleantap matches email (or phone) *and* first name: a
        # state record under both is the very contact a write lands on, which lets the
        # identity map stand in for the look-up.
        keys = record_keys(item.contact, ("external_id", "email+first_name", "phone+first_name"))
        return keys[0] if keys else None

    def prepare(self, contact: Contact, ctx: MappingContext) -> GleantapPayload:
        return to_payload(
            contact,
            ctx,
            self.options.app_id,
            self.options.source,
            sms_subscribed_sets_optin=self.options.sms_subscribed_sets_optin,
        )

    def upsert(self, batch: Sequence[Prepared[GleantapPayload]]) -> Flow:
        options = self.options
        return each(
            batch,
            lambda item: upsert_one(item, options.lookup, self.tenant.sync_mode, options.adopt),
        )

    @classmethod
    def create_emulator(cls, tenant: Tenant | None = None) -> GleantapEmulator:
        emulator = GleantapEmulator()
        if tenant is not None:
            credentials: GleantapCredentials = tenant.credentials
            emulator.keys.add((credentials.api_key.reveal(), credentials.secret_key.reveal()))
            emulator.app_ids.add(tenant.options.app_id)
        return emulator
