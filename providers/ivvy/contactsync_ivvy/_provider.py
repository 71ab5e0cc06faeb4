"""The iVvy provider: signed requests, id resolution, integer statuses, groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from contactsync.provider import (
    Capabilities,
    ChangeMode,
    ConfigError,
    Contact,
    FieldType,
    Flow,
    MappingContext,
    Prepared,
    Provider,
    RemoteField,
    RemoteGroup,
    Request,
    RequestFailed,
    Response,
    Status,
    Steps,
    Tenant,
    each,
)

from ._emulator import DEMO_API_KEY, DEMO_API_SECRET, IvvyEmulator
from ._envelope import STALE_REQUEST, describe, envelope, is_retryable
from ._flows import CONTACT, upsert_one
from ._mapping import (
    DATE,
    EMAIL_STATUS,
    NUMBER,
    SMALL_TEXT,
    SMS_STATUS,
    FieldDefinition,
    IvvyPayload,
    to_payload,
)
from ._options import HOSTS, IvvyCredentials, IvvyOptions
from ._signing import IvvyAuth


class IvvyProvider(Provider[IvvyPayload]):
    name = "ivvy"
    display_name = "iVvy"
    default_base_url = HOSTS["AU"]
    credentials_type = IvvyCredentials
    options_type = IvvyOptions
    secret_headers = frozenset({"x-api-authorization"})
    demo_credentials: ClassVar[Mapping[str, str]] = {
        "api_key": DEMO_API_KEY,
        "api_secret": DEMO_API_SECRET,
    }
    capabilities = Capabilities(
        max_batch_size=1,
        identity_keys=("remote_id", "external_id", "first_name+last_name+email"),
        email_statuses=frozenset(EMAIL_STATUS),
        sms_statuses=frozenset(SMS_STATUS),
        group_modes=frozenset({ChangeMode.ADD, ChangeMode.REMOVE, ChangeMode.REPLACE}),
        tag_modes=frozenset(),
        channels=frozenset({"email", "sms"}),
        custom_fields=True,
        default_concurrency=8,
        # addOrUpdateContact answers only the id: a write by id is ``updated``, a
        # create without updateIfExists ``created``, one with it ``written`` (it may
        # have matched an existing contact).
        write_statuses=frozenset({Status.CREATED, Status.UPDATED, Status.WRITTEN}),
        # One getContactList says whether a contact exists (and the identity map often
        # knows already).
        sync_modes=frozenset({"upsert", "create_only", "update_only"}),
        fields=frozenset(
            {
                "external_id",
                "remote_id",
                "first_name",
                "last_name",
                "email",
                "phone",
                "email_status",
                "sms_status",
                "groups",
                "custom_fields",
                "provider_options",
            }
        ),
        field_notes={"birth_date": "map it to a custom date field instead"},
    )

    def __init__(self, tenant: Tenant) -> None:
        super().__init__(tenant)
        self.options: IvvyOptions = tenant.options
        self._definitions: dict[int, FieldDefinition] = {}
        self._groups_by_name: dict[str, int] = {}

    @classmethod
    def base_url_for(cls, options: Any) -> str:
        return HOSTS[options.region] if isinstance(options, IvvyOptions) else cls.default_base_url

    @classmethod
    def check_tenant(cls, tenant: Tenant) -> None:
        for name, value in tenant.custom_fields.items():
            if isinstance(value, str) and not value.isdigit():
                raise ConfigError(
                    f"tenants.{tenant.name}.custom_fields.{name}", "iVvy field ids are numbers"
                )

    def auth(self) -> httpx.Auth:
        credentials: IvvyCredentials = self.tenant.credentials
        return IvvyAuth(credentials.api_key.reveal(), credentials.api_secret)

    def is_retryable(self, response: Response) -> bool:
        return is_retryable(response)

    def is_auth_failure(self, response: Response) -> bool:
        # A wrong key, signature or a stale clock (23005) all come back as 401.
        error = envelope(response)
        return response.status_code in (401, 403) or (
            error is not None and error.get("errorCode") in (401, 403)
        )

    def auth_failure_hint(self, response: Response) -> str:
        error = envelope(response)
        if error is not None and error.get("specificCode") == STALE_REQUEST:
            return describe(error, "iVvy refused the request").message
        return super().auth_failure_hint(response)

    def not_applied(self, response: Response) -> bool:
        # iVvy may answer a rate limit as an error envelope with errorCode 429.
        error = envelope(response)
        return response.status_code in (429, 503) or (
            error is not None and error.get("errorCode") == 429
        )

    def setup(self) -> Steps[None] | None:
        wants_groups = any(isinstance(v, str) for v in self.tenant.groups.values())
        if not (wants_groups or self.options.check_field_types):
            return None
        return self._discover(wants_groups)

    def _discover(self, groups: bool) -> Steps[None]:
        if groups:
            response = yield Request(
                "POST", CONTACT + "getSubscriptionGroupList", json={}, read_only=True
            )
            assert response is not None
            self._check(response, "reading the subscription groups")
            for group in response.json() or []:
                if isinstance(group, Mapping) and "id" in group:
                    self._groups_by_name[str(group.get("groupName"))] = int(group["id"])
        if self.options.check_field_types:
            response = yield Request(
                "POST", CONTACT + "getCustomFieldDefinition", json={}, read_only=True
            )
            assert response is not None
            self._check(response, "reading the custom field definitions")
            for field in response.json() or []:
                if isinstance(field, Mapping) and "fieldId" in field:
                    values = field.get("selectValues") or {}
                    self._definitions[int(field["fieldId"])] = FieldDefinition(
                        id=int(field["fieldId"]),
                        type=int(field.get("fieldType") or 0),
                        name=str(field.get("displayName") or ""),
                        select_values=tuple(values) if isinstance(values, Mapping) else (),
                    )

    # --- discovery ----------------------------------------------------------------------

    def read_back(self, remote_id: str, external_id: str) -> Steps[bool] | None:
        if not remote_id.isdigit():
            return None
        return self._read_back(int(remote_id), external_id)

    @staticmethod
    def _read_back(contact_id: int, external_id: str) -> Steps[bool]:
        response = yield Request(
            "POST",
            CONTACT + "getContactList",
            json={"filter": {"id": contact_id}, "perPage": 10, "start": 0},
            read_only=True,
        )
        assert response is not None
        if envelope(response) is not None:
            return False
        results = (response.json() or {}).get("results") or []
        return any(
            isinstance(r, Mapping)
            and str(r.get("id")) == str(contact_id)
            and r.get("externalId") == external_id
            for r in results
        )

    def check_credentials(self) -> Steps[object]:
        # The documented health check, signed like every call: it proves the key pair.
        response = yield Request("POST", "/api/1.0/test?action=ping", json={}, read_only=True)
        assert response is not None
        self._check(response, "the ping")
        return None

    def list_fields(self) -> Steps[Sequence[RemoteField]]:
        response = yield Request(
            "POST", CONTACT + "getCustomFieldDefinition", json={}, read_only=True
        )
        assert response is not None
        self._check(response, "reading the custom field definitions")
        found = []
        for field in response.json() or []:
            if isinstance(field, Mapping) and "fieldId" in field:
                kind = int(field.get("fieldType") or 0)
                found.append(
                    RemoteField(
                        int(field["fieldId"]),
                        str(field.get("displayName") or ""),
                        _TYPE_NAMES.get(kind, f"type {kind}"),
                        _FIELD_TYPES.get(kind),
                    )
                )
        return found

    def list_groups(self) -> Steps[Sequence[RemoteGroup]]:
        response = yield Request(
            "POST", CONTACT + "getSubscriptionGroupList", json={}, read_only=True
        )
        assert response is not None
        self._check(response, "reading the subscription groups")
        return [
            RemoteGroup(int(g["id"]), str(g.get("groupName") or ""), "subscription group")
            for g in response.json() or []
            if isinstance(g, Mapping) and "id" in g
        ]

    @staticmethod
    def _check(response: Response, what: str) -> None:
        error = envelope(response)
        if error is not None:
            raise RequestFailed(describe(error, what).message, status_code=response.status_code)

    def prepare(self, contact: Contact, ctx: MappingContext) -> IvvyPayload:
        return to_payload(contact, ctx, self._definitions, self._groups_by_name)

    def upsert(self, batch: Sequence[Prepared[IvvyPayload]]) -> Flow:
        return each(
            batch,
            lambda item: upsert_one(item, self.options.update_if_exists, self.tenant.sync_mode),
        )

    @classmethod
    def create_emulator(cls, tenant: Tenant | None = None) -> IvvyEmulator:
        emulator = IvvyEmulator()
        if tenant is not None:
            credentials: IvvyCredentials = tenant.credentials
            emulator.keys[credentials.api_key.reveal()] = credentials.api_secret.reveal()
            # A configured account has the groups and fields its tenant names.
            for name, ref in tenant.groups.items():
                emulator.add_group(
                    ref if isinstance(ref, str) else name, ref if isinstance(ref, int) else None
                )
            for name, ref in tenant.custom_fields.items():
                declared = tenant.custom_field_types.get(name)
                kind = _EMULATED_TYPES.get(declared, SMALL_TEXT) if declared else SMALL_TEXT
                emulator.add_field(int(ref), kind, name)
        return emulator


_TYPE_NAMES = dict(
    enumerate(
        (
            "small text",
            "large text",
            "single select",
            "multi select",
            "address",
            "date",
            "file",
            "static",
            "number",
        )
    )
)
"""``fieldType`` of ``getCustomFieldDefinition``, in words."""
_FIELD_TYPES = {NUMBER: FieldType.INT, DATE: FieldType.DATE}
"""iVvy field types with a declared type that converts CSV text for them."""
_EMULATED_TYPES = {FieldType.INT: NUMBER, FieldType.DATE: DATE}
