"""The Yespo provider: capabilities, tenant checks, and which flow a batch takes."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import ClassVar

import httpx

from contactsync.provider import (
    Capabilities,
    ChangeMode,
    ConfigError,
    Contact,
    ContactError,
    FieldType,
    Flow,
    MappingContext,
    Prepared,
    Provider,
    RateLimit,
    RemoteField,
    RemoteGroup,
    Request,
    RequestFailed,
    Response,
    Status,
    Steps,
    Subscription,
    Tenant,
    each,
)

from ._emulator import DEMO_API_KEY, YespoEmulator
from ._fields import FieldDefinition, parse_address_books
from ._flows import GROUP_PAGE, SegmentIds, bulk, guarded_bulk, realtime
from ._lenient import one_or_many
from ._mapping import YespoPayload, to_payload
from ._options import YespoCredentials, YespoOptions

RATE_LIMITS = (
    # Every method not in Yespo's own rate-limit table shares 200 requests per second
    # (rate-limits, api-notes D13; the spec's 429 "more than 200 requests per 1 second"
    # on /contact, /contact/subscribe, PUT /contact/{id} and bulk /contacts).
    RateLimit(200, 1),
    # Contact search: 50 per second (also counted against the 200 above: safe).
    RateLimit(50, 1, "GET", "/api/v1/contacts"),
)

# Keys the bulk dedupeOn reads from a contact that has no external id.
_DEDUPE_NEEDS = {
    "email": ("email",),
    "sms": ("phone",),
    "email_or_sms": ("email", "phone"),
    "externalCustomerId": (),
    "id": ("remote_id",),
}


class YespoProvider(Provider[YespoPayload]):
    name = "yespo"
    display_name = "Yespo"
    default_base_url = "https://api.yespo.io"
    credentials_type = YespoCredentials
    options_type = YespoOptions
    secret_headers = frozenset({"authorization"})
    demo_credentials: ClassVar[Mapping[str, str]] = {"api_key": DEMO_API_KEY}
    # Yespo matches by external id or dedupe key itself: its flows never write by a
    # known id, so the run keeps none for later rows.
    uses_known_ids = False
    capabilities = Capabilities(
        max_batch_size=3000,
        identity_keys=("external_id", "remote_id", "email", "phone"),
        email_statuses=frozenset(
            {Subscription.SUBSCRIBED, Subscription.UNSUBSCRIBED, Subscription.PENDING}
        ),
        sms_statuses=frozenset(),
        group_modes=frozenset({ChangeMode.ADD, ChangeMode.REMOVE}),
        tag_modes=frozenset(),
        channels=frozenset({"email", "sms"}),
        custom_fields=True,
        rate_limits=RATE_LIMITS,
        default_concurrency=8,
        distinguishes_created=False,
        # POST /contact and the bulk import say only the id: written. A PUT by id
        # updates; double opt-in's answer says ``new``.
        write_statuses=frozenset({Status.CREATED, Status.UPDATED, Status.WRITTEN}),
        fields=frozenset(
            {
                "external_id",
                "remote_id",
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
                "groups",
                "custom_fields",
                "language",
                "time_zone",
                "provider_options",
            }
        ),
        field_notes={
            "birth_date": "map it to a custom date field instead",
            "address.country": "Yespo's address has no country",
        },
    )

    def __init__(self, tenant: Tenant) -> None:
        super().__init__(tenant)
        self.options: YespoOptions = tenant.options
        self._segments = SegmentIds()
        self._definitions: dict[int, FieldDefinition] = {}

    @classmethod
    def check_tenant(cls, tenant: Tenant) -> None:
        for name, value in tenant.groups.items():
            if not isinstance(value, str):
                raise ConfigError(
                    f"tenants.{tenant.name}.groups.{name}",
                    "Yespo segments are configured by name (a string)",
                )
        for name, value in tenant.custom_fields.items():
            if isinstance(value, str) and not value.isdigit():
                raise ConfigError(
                    f"tenants.{tenant.name}.custom_fields.{name}",
                    "Yespo custom fields are configured by their numeric id",
                )
        options: YespoOptions = tenant.options
        if options.bulk_threshold is not None:
            raise ConfigError(
                f"tenants.{tenant.name}.options.bulk_threshold",
                "no longer used: mode auto sends in bulk at every batch size (real-time "
                "matches contacts by other rules, so the batch size would decide which "
                'contact a row lands on); use mode = "realtime" for one call per contact',
            )

    def auth(self) -> httpx.Auth:
        # Yespo reads only the password; the user name may be anything.
        return httpx.BasicAuth("contactsync", self.tenant.credentials.api_key.reveal())

    def batch_size(self) -> int:
        return 1 if self.options.mode == "realtime" else self.capabilities.max_batch_size

    def setup(self) -> Steps[None] | None:
        segments = sorted({str(name) for name in self.tenant.groups.values()})
        if not (segments or self.options.check_field_types):
            return None
        return self._discover(segments)

    def _discover(self, segments: list[str]) -> Steps[None]:
        # Segment ids are read once, before any contact: concurrent flows then never
        # look the same segment up twice.
        for name in segments:
            try:
                yield from self._segments.resolve(name, ())
            except RequestFailed as exc:
                if exc.retryable or exc.code != "request_failed":
                    raise
                # No such segment: only the contacts that name it fail, when they do.
        if self.options.check_field_types:
            response = yield Request("GET", "/api/v1/addressbooks")
            assert response is not None
            if response.is_success:
                self._definitions = parse_address_books(response.json())

    # --- discovery ----------------------------------------------------------------------

    def read_back(self, remote_id: str, external_id: str) -> Steps[bool] | None:
        if not remote_id.isdigit():
            return None
        return self._read_back(int(remote_id), external_id)

    @staticmethod
    def _read_back(contact_id: int, external_id: str) -> Steps[bool]:
        response = yield Request("GET", f"/api/v1/contact/{contact_id}")
        assert response is not None
        if not response.is_success:
            return False
        body = response.json()
        return isinstance(body, Mapping) and body.get("externalCustomerId") == external_id

    def check_credentials(self) -> Steps[object]:
        response = yield Request("GET", "/api/v1/groups?startindex=1&maxrows=1")
        assert response is not None
        _require_success(response, "GET /api/v1/groups")
        return None

    def list_fields(self) -> Steps[Sequence[RemoteField]]:
        response = yield Request("GET", "/api/v1/addressbooks")
        assert response is not None
        _require_success(response, "GET /api/v1/addressbooks")
        return [
            RemoteField(d.id, d.name, d.type, _FIELD_TYPES.get(d.type))
            for d in sorted(parse_address_books(response.json()).values(), key=lambda d: d.id)
        ]

    def list_groups(self) -> Steps[Sequence[RemoteGroup]]:
        # Segments are mapped by name (resolved to ids before the first contact).
        groups: list[RemoteGroup] = []
        start = 1
        while True:
            path = f"/api/v1/groups?startindex={start}&maxrows={GROUP_PAGE}"
            response = yield Request("GET", path)
            assert response is not None
            _require_success(response, "GET /api/v1/groups")
            page = [g for g in one_or_many(response.json()) if isinstance(g, Mapping)]
            for group in page:
                kind = f"segment, {group['type']}" if group.get("type") else "segment"
                groups.append(RemoteGroup(str(group.get("name")), str(group.get("name")), kind))
            if len(page) < GROUP_PAGE:
                return groups
            start += GROUP_PAGE

    def prepare(self, contact: Contact, ctx: MappingContext) -> YespoPayload:
        payload = to_payload(contact, ctx, self._definitions, self.options.resubscribe)
        if self.options.mode != "realtime" and contact.external_id is None:
            needs = _DEDUPE_NEEDS[self.options.dedupe_on]
            if not any(getattr(contact, key) is not None for key in needs):
                # Bulk would match nothing and create the contact again on every run.
                wanted = " or ".join(("external_id", *needs))
                raise ContactError(
                    "external_id",
                    f"Yespo bulk with dedupeOn={self.options.dedupe_on} needs {wanted} "
                    "to find the contact again",
                )
        return payload

    def batch_key(self, item: Prepared[YespoPayload]) -> Hashable:
        payload = item.payload
        # A bulk request shares contactFields, customFieldsIDs and segment changes:
        # only contacts that agree on all of them may share one. Double opt-in goes
        # through a separate method, so those contacts batch apart too.
        return (
            payload.fields,
            payload.custom_ids,
            payload.groups_add,
            payload.groups_remove,
            payload.email_action == "confirm",
            payload.remote_id is not None,
            # Contacts with an external id are deduplicated on it alone (bulk_body).
            "externalCustomerId" in payload.fields,
        )

    def upsert(self, batch: Sequence[Prepared[YespoPayload]]) -> Flow:
        return self._upsert(batch)

    def _upsert(self, batch: Sequence[Prepared[YespoPayload]]) -> Flow:
        first = batch[0].payload
        use_bulk = (
            self.options.mode in ("bulk", "auto")
            and first.email_action != "confirm"
            and first.remote_id is None
        )
        if use_bulk and "externalCustomerId" not in first.fields:
            # Matched by email or phone: looked up first, never merged (rule 7).
            return (yield from guarded_bulk(self.options, self._segments, batch))
        if use_bulk:
            return (yield from bulk(self.options, self._segments, batch))
        return (yield from each(batch, lambda item: realtime(self._segments, item)))

    @classmethod
    def create_emulator(cls, tenant: Tenant | None = None) -> YespoEmulator:
        emulator = YespoEmulator()
        if tenant is not None:
            emulator.api_keys = emulator.api_keys | {tenant.credentials.api_key.reveal()}
            # A configured account has the segments its tenant names.
            for segment in tenant.groups.values():
                emulator.segment(str(segment))
            # ...and the custom fields it maps, of the Yespo type its declared type needs.
            known = {f["id"] for f in emulator.field_definitions}
            for name, ref in tenant.custom_fields.items():
                if isinstance(ref, int) and ref not in known:
                    declared = tenant.custom_field_types.get(name)
                    kind = _EMULATED_TYPES.get(declared, "TEXTFIELD") if declared else "TEXTFIELD"
                    emulator.field_definitions.append({"id": ref, "name": name, "type": kind})
        return emulator


_FIELD_TYPES = {"NUMBER": FieldType.INT, "DECIMAL": FieldType.FLOAT, "DATE": FieldType.DATE}
"""Yespo field types with a declared type that converts CSV text for them; the rest
(text, lists, date-times in Yespo's own form) are sent as given."""


def _require_success(response: Response, label: str) -> None:
    if not response.is_success:
        raise RequestFailed(
            f"{label} answered HTTP {response.status_code}",
            status_code=response.status_code,
            retryable=False,
        )


_EMULATED_TYPES = {FieldType.INT: "NUMBER", FieldType.FLOAT: "DECIMAL", FieldType.DATE: "DATE"}
