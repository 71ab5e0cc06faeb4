"""A conformance suite any provider can run (ours and third parties').

Subclass :class:`ProviderConformance` in a test module, under a name pytest collects::

    class TestFooConformance(ProviderConformance):
        provider = "foo"
        tenant = {"options": {...}, "custom_fields": {...}, "groups": {...}}
        contacts = [{"external_id": "c1", "email": "a@example.com", ...}, ...]
        unsupported = [{"external_id": "u1", "email": "u@example.com", "tags": ["x"]}]

Every test runs against the provider's emulator, in-process: idempotent upsert, one
outcome per contact, unsupported features rejected (or warned), secrets never leaked,
``plan`` sending nothing, and the emulator keeping its own identity rules.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

import attrs
import httpx
import pytest

from .._client import Client
from .._emulator import EmulatorApp
from .._outcome import Outcome, Status
from .._registry import default_registry

SECRET_MARK = "conformance-secret-7c41e9"


def _no_sleep(seconds: float) -> None:
    del seconds


class _Refuse(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"plan sent {request.method} {request.url}")


class ProviderConformance:
    provider: ClassVar[str]
    tenant: ClassVar[dict[str, Any]] = {}
    """Tenant table (without ``provider``); the emulator stands in for the platform."""
    contacts: ClassVar[list[dict[str, Any]]]
    """Valid contact records, each with an ``external_id`` and a ``last_name``."""
    unsupported: ClassVar[list[dict[str, Any]]] = []
    """Records that each ask for something the platform cannot express."""

    # --- helpers ------------------------------------------------------------------------

    def config(self, **overrides: Any) -> dict[str, Any]:
        table = {"default_phone_region": "GB", **self.tenant, **overrides}
        table["provider"] = self.provider
        table["base_url"] = "emulator"
        return {"tenants": {"conformance": table}}

    def secret_credentials(self) -> dict[str, str]:
        provider = default_registry.get(self.provider)
        return {f.name: f"{SECRET_MARK}-{f.name}" for f in attrs.fields(provider.credentials_type)}

    def client(self, **overrides: Any) -> Client:
        return Client(self.config(**overrides), "conformance", sleep=_no_sleep)

    @staticmethod
    def stored(client: Client) -> list[dict[str, Any]]:
        assert client.emulator_app is not None
        return client.emulator_app.emulator.contacts()

    @staticmethod
    def run(client: Client, records: list[Any]) -> list[Outcome]:
        return sorted(client.upsert_many(records), key=lambda o: o.index)

    # --- the suite ----------------------------------------------------------------------

    def test_upsert_is_idempotent(self) -> None:
        with self.client() as client:
            first = self.run(client, self.contacts)
            count = len(self.stored(client))
            second = self.run(client, self.contacts)
            assert len(self.stored(client)) == count == len(self.contacts)
        assert all(o.ok for o in first + second), [o.error for o in first + second if not o.ok]
        assert not any(o.status is Status.CREATED for o in second)

    def test_one_outcome_per_contact(self) -> None:
        records: list[Any] = []
        for record in self.contacts:
            records += [record, {"email": "not-an-email"}, {"bogus_field": 1}]
        records += self.unsupported
        with self.client() as client:
            outcomes = self.run(client, records)
        assert [o.index for o in outcomes] == list(range(len(records)))
        rejected = {o.index for o in outcomes if o.status is Status.REJECTED}
        assert {i for i, r in enumerate(records) if "external_id" not in r} <= rejected

    def test_unsupported_features_are_rejected_or_warned(self) -> None:
        if not self.unsupported:
            pytest.skip("no unsupported sample given")
        with self.client() as client:
            outcomes = self.run(client, self.unsupported)
            assert self.stored(client) == []
        for outcome in outcomes:
            assert outcome.status is Status.REJECTED
            assert outcome.error is not None
            assert outcome.error.code == "unsupported_feature"
        with self.client(on_unsupported="warn") as client:
            warned = self.run(client, self.unsupported)
        assert all(o.ok and o.warnings for o in warned), warned

    def test_secrets_never_leak(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        texts: list[str] = []
        with self.client(credentials=self.secret_credentials()) as client:
            outcomes = self.run(client, [*self.contacts, {"email": "not-an-email"}])
            texts += [
                repr(client.tenant),
                repr(client.provider.__dict__),
                repr(client.tenant.credentials),
            ]
            texts += [json.dumps(o.to_json()) + repr(o) for o in outcomes]
            texts += [
                json.dumps(p.to_json())
                for p in client.plan(self.contacts)
                if not isinstance(p, Outcome)
            ]
        texts += [record.getMessage() for record in caplog.records]
        assert all(o.ok for o in outcomes[:-1])
        for text in texts:
            assert SECRET_MARK not in text

    def test_plan_sends_nothing(self) -> None:
        config = self.config()
        config["tenants"]["conformance"]["base_url"] = None
        table = {k: v for k, v in config["tenants"]["conformance"].items() if v is not None}
        table["credentials"] = self.secret_credentials()
        with Client(
            {"tenants": {"conformance": table}}, "conformance", transport=_Refuse()
        ) as client:
            planned = [p for p in client.plan(self.contacts) if not isinstance(p, Outcome)]
        assert planned
        assert {i for p in planned for i in p.contacts} == set(range(len(self.contacts)))

    def test_emulator_keeps_its_identity_rules(self) -> None:
        changed = [{**r, "last_name": f"{r['last_name']}-changed"} for r in self.contacts]
        with self.client() as client:
            self.run(client, self.contacts)
            outcomes = self.run(client, changed)
            assert len(self.stored(client)) == len(self.contacts)
            app: EmulatorApp | None = client.emulator_app
            assert app is not None
        assert all(o.ok and o.remote_id for o in outcomes)
