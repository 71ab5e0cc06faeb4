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

:func:`suites` builds one such class for every installed provider (found by entry
point), with samples drawn from its declared capabilities: a test module that does
``globals().update(suites())`` runs the suite on each, a new provider included.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs
import httpx
import pytest

from .._client import Client
from .._emulator import EmulatorApp
from .._fields import FIELDS
from .._model import Subscription
from .._outcome import Outcome, Status
from .._provider import Provider
from .._registry import Registry, default_registry

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


PEOPLE: tuple[Mapping[str, Any], ...] = tuple(
    {
        "external_id": f"k{n}",
        "first_name": f"First{n}",
        "last_name": f"Last{n}",
        "email": f"k{n}@example.com",
        "phone": f"+4479111234{n:02d}",
    }
    for n in range(6)
)
"""The people every generated suite upserts (each keeps only the fields its provider maps)."""

# A value for each neutral field, to ask a provider for one it does not map.
SAMPLES: Mapping[str, Any] = {
    "external_id": "sample",
    "remote_id": "12345",
    "first_name": "Ann",
    "last_name": "Lee",
    "email": "sample@example.com",
    "phone": "+447911123499",
    "address.line1": "1 High Street",
    "address.line2": "Flat 2",
    "address.city": "Leeds",
    "address.region": "West Yorkshire",
    "address.postal_code": "LS1 1AA",
    "address.country": "GB",
    "email_status": "unsubscribed",
    "sms_status": "unsubscribed",
    "groups": {"add": ["sample"]},
    "tags": {"add": ["sample"]},
    "custom_fields": {"sample": "value"},
    "language": "en",
    "time_zone": "Europe/London",
    "birth_date": "1990-01-02",
}


def _record(person: Mapping[str, Any], field: str, value: Any) -> dict[str, Any]:
    top, _, part = field.partition(".")
    return {**person, top: {part: value} if part else value}


def unsupported_samples(provider: type[Provider[Any]], limit: int = 2) -> list[dict[str, Any]]:
    """Records asking for what ``provider`` declares it cannot express: unmapped fields,
    and an email status outside its ``email_statuses``."""
    caps = provider.capabilities
    samples = {**SAMPLES, "provider_options": {provider.name: {"sample": "value"}}}
    asks = [(f.name, samples[f.name]) for f in FIELDS if f.name not in caps.fields][:limit]
    if "email_status" in caps.fields:
        refused = [s for s in Subscription if s not in caps.email_statuses]
        asks += [("email_status", s.value) for s in refused[:1]]
    return [_record(p, name, value) for p, (name, value) in zip(PEOPLE, asks, strict=False)]


def suite_for(provider: type[Provider[Any]]) -> type[ProviderConformance]:
    """The conformance suite of ``provider``, on its emulator with its demo options."""
    mapped = provider.capabilities.fields
    attributes = {
        "provider": provider.name,
        "tenant": {"options": dict(provider.demo_options)},
        "contacts": [{k: v for k, v in p.items() if k in mapped} for p in PEOPLE],
        "unsupported": unsupported_samples(provider),
    }
    name = f"Test{provider.name.title().replace('_', '')}Conformance"
    return type(name, (ProviderConformance,), attributes)


def suites(registry: Registry | None = None) -> dict[str, type[ProviderConformance]]:
    """A suite class for every implemented provider ``registry`` knows (by default the
    installed ones), by test class name."""
    registry = registry or Registry()
    found = (registry.get(name) for name in registry.names())
    return {cls.__name__: cls for cls in map(suite_for, (p for p in found if p.implemented))}
