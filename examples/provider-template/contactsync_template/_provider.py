"""The sans-IO half: map a contact to Template's body, and the one-request flow."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import ClassVar

import attrs
import httpx

from contactsync.provider import (
    Capabilities,
    Contact,
    ContactError,
    Flow,
    MappingContext,
    Outcome,
    OutcomeError,
    Prepared,
    Provider,
    Request,
    Response,
    Secret,
    Status,
    Tenant,
    each,
)
from contactsync.testing import Emulator

Payload = dict[str, str]


@attrs.frozen
class TemplateCredentials:
    api_key: Secret = attrs.field(repr=False)


class BearerAuth(httpx.Auth):
    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        yield request


class TemplateProvider(Provider[Payload]):
    name = "template"
    display_name = "Template"
    default_base_url = "https://api.template.example"
    credentials_type = TemplateCredentials
    secret_headers = frozenset({"authorization"})
    demo_credentials: ClassVar[Mapping[str, str]] = {"api_key": "template-demo-key"}
    capabilities = Capabilities(
        max_batch_size=1,
        identity_keys=("external_id",),
        fields=frozenset({"external_id", "first_name", "last_name", "email"}),
    )

    def auth(self) -> httpx.Auth:
        return BearerAuth(self.tenant.credentials.api_key)

    def prepare(self, contact: Contact, ctx: MappingContext) -> Payload:
        # Core has already refused every field not in capabilities.fields.
        if contact.external_id is None:
            raise ContactError("external_id", "Template matches contacts on it: it is required")
        body = {
            "external_id": contact.external_id,
            "email": contact.email,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
        }
        return {k: v for k, v in body.items() if v is not None}

    def upsert(self, batch: Sequence[Prepared[Payload]]) -> Flow:
        return each(batch, self._one)

    def _one(self, item: Prepared[Payload]) -> Generator[Request, Response | None, Outcome]:
        response = yield Request("POST", "/contacts", json=item.payload, contacts=(item.index,))
        assert response is not None
        body = response.json()
        if not response.is_success or not isinstance(body, dict):
            error = OutcomeError(
                "platform_error", response.text[:200], status_code=response.status_code
            )
            return Outcome(item.index, Status.FAILED, error=error)
        # Only what the answer proves: an answer without the flag is just "written".
        created = body.get("created")
        if created is True:
            status = Status.CREATED
        elif created is False:
            status = Status.UPDATED
        else:
            status = Status.WRITTEN
        return Outcome(item.index, status, remote_id=str(body["id"]))

    @classmethod
    def create_emulator(cls, tenant: Tenant | None = None) -> Emulator:
        from ._emulator import TemplateEmulator  # noqa: PLC0415 - emulators load on demand

        keys = {cls.demo_credentials["api_key"]}
        if tenant is not None:
            keys.add(tenant.credentials.api_key.reveal())
        return TemplateEmulator(keys)
