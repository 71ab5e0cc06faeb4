"""A small provider and its emulator, used to test the core without any platform.

The fake platform matches contacts by external id, else by email. Its flow has two
steps (look the batch up, then write it), like the real multi-step providers.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Mapping, Sequence
from collections.abc import Generator as _Gen
from typing import Any, ClassVar

import attrs
import httpx

from contactsync import (
    ChangeMode,
    Contact,
    ContactError,
    Outcome,
    OutcomeError,
    Secret,
    Status,
    Subscription,
    Tenant,
)
from contactsync.provider import Capabilities, MappingContext, Prepared, Provider, Request, Response
from contactsync.testing import Emulator, json_response

DEMO_KEY = "fake-demo-key"


@attrs.frozen
class FakeCredentials:
    api_key: Secret


@attrs.frozen
class FakeOptions:
    list_name: str = "main"


class KeyAuth(httpx.Auth):
    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Key"] = self._key.reveal()
        yield request


def identity(payload: dict[str, Any]) -> str:
    return (
        f"ext:{payload['external_id']}"
        if payload.get("external_id")
        else f"email:{payload['email']}"
    )


class FakeProvider(Provider[dict[str, Any]]):
    name = "fake"
    display_name = "Fake"
    default_base_url = "https://fake.test"
    credentials_type = FakeCredentials
    options_type = FakeOptions
    secret_headers = frozenset({"x-key"})
    demo_credentials: ClassVar[Mapping[str, str]] = {"api_key": DEMO_KEY}
    capabilities = Capabilities(
        max_batch_size=3,
        identity_keys=("external_id", "email"),
        email_statuses=frozenset({Subscription.SUBSCRIBED, Subscription.UNSUBSCRIBED}),
        group_modes=frozenset({ChangeMode.ADD, ChangeMode.REMOVE}),
        custom_fields=True,
        default_concurrency=2,
        fields=frozenset(
            {
                "external_id",
                "email",
                "phone",
                "first_name",
                "email_status",
                "groups",
                "custom_fields",
            }
        ),
    )

    def auth(self) -> httpx.Auth:
        return KeyAuth(self.tenant.credentials.api_key)

    def prepare(self, contact: Contact, ctx: MappingContext) -> dict[str, Any]:
        if contact.external_id is None and contact.email is None:
            raise ContactError("email", "the fake platform needs an email or an external_id")
        payload: dict[str, Any] = {
            k: v
            for k, v in {
                "external_id": contact.external_id,
                "email": contact.email,
                "phone": contact.phone,
                "first_name": contact.first_name,
                "status": contact.email_status and contact.email_status.value,
            }.items()
            if v is not None
        }
        if contact.email_status not in (None, *self.capabilities.email_statuses):
            ctx.unsupported(f"email_status {contact.email_status}")
            payload.pop("status", None)
        if contact.groups.replace is not None:
            ctx.unsupported("replacing groups")
        if contact.groups.add:
            payload["groups_add"] = [ctx.group_id(g) for g in contact.groups.add]
        if contact.custom_fields:
            payload["fields"] = {
                str(ctx.custom_field_id(k)): str(v) for k, v in contact.custom_fields.items()
            }
        payload["list"] = self.tenant.options.list_name
        return payload

    def upsert(
        self, batch: Sequence[Prepared[dict[str, Any]]]
    ) -> _Gen[Any, Any, Sequence[Outcome]]:
        indexes = tuple(item.index for item in batch)
        keys = [identity(item.payload) for item in batch]
        found = yield Request(
            "POST",
            "/lookup",
            json={"keys": keys},
            contacts=indexes,
            plan_response=Response(200, b'{"found": {}}'),
        )
        if not found.is_success:
            return [
                Outcome(i, Status.FAILED, error=OutcomeError("platform_error", found.text))
                for i in indexes
            ]
        known = found.json()["found"]
        written = yield Request(
            "POST",
            "/contacts",
            json={
                "contacts": [
                    dict(item.payload, id=known.get(k)) for item, k in zip(batch, keys, strict=True)
                ]
            },
            contacts=indexes,
        )
        if not written.is_success:
            return [
                Outcome(i, Status.FAILED, error=OutcomeError("platform_error", written.text))
                for i in indexes
            ]
        results = written.json()["results"]
        return [
            Outcome(
                item.index,
                # Its answer says whether it created; changed or not, a contact that
                # existed was sent, so it is updated (never unchanged: that is the
                # state store's word, for contacts nothing was sent for).
                Status.CREATED if r["created"] else Status.UPDATED,
                remote_id=str(r["id"]),
            )
            for item, r in zip(batch, results, strict=True)
        ]

    @classmethod
    def create_emulator(cls, tenant: Tenant | None = None) -> FakeEmulator:
        keys = {DEMO_KEY}
        if tenant is not None:
            keys.add(tenant.credentials.api_key.reveal())
        return FakeEmulator(keys)


class FakeEmulator(Emulator):
    def __init__(self, keys: set[str]) -> None:
        self.keys = keys
        self.store: dict[int, dict[str, Any]] = {}
        self.index: dict[str, int] = {}
        self.calls = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if request.headers.get("X-Key") not in self.keys:
            return json_response(401, {"error": "bad key"})
        body = json.loads(request.content)
        if request.url.path == "/lookup":
            return json_response(
                200, {"found": {k: self.index[k] for k in body["keys"] if k in self.index}}
            )
        if request.url.path == "/contacts":
            return json_response(200, {"results": [self._write(c) for c in body["contacts"]]})
        return json_response(404, {"error": "no route"})

    def _write(self, payload: dict[str, Any]) -> dict[str, Any]:
        key = identity(payload)
        contact_id = payload.pop("id", None) or self.index.get(key)
        created = contact_id is None
        if contact_id is None:
            contact_id = len(self.store) + 1
        before = dict(self.store.get(contact_id, {}))
        merged = {**before, **payload}
        self.store[contact_id] = merged
        self.index[key] = contact_id
        return {"id": contact_id, "created": created, "changed": merged != before}

    def contacts(self) -> list[dict[str, Any]]:
        return [dict(v, id=k) for k, v in self.store.items()]

    def reset(self) -> None:
        self.store.clear()
        self.index.clear()


def tenant_config(**overrides: Any) -> dict[str, Any]:
    tenant: dict[str, Any] = {
        "provider": "fake",
        "base_url": "emulator",
        "default_phone_region": "GB",
        "credentials": {"api_key": DEMO_KEY},
        "custom_fields": {"loyalty": 7},
        "groups": {"vip": "G-VIP", "news": "G-NEWS"},
        "http": {"backoff_base": 0.0, "backoff_max": 0.0},
    }
    tenant.update(overrides)
    return {"tenants": {"t": tenant}}


def contacts(count: int) -> Iterator[Contact]:
    for n in range(count):
        yield Contact(external_id=f"c{n}", email=f"person{n}@example.com", first_name=f"P{n}")
