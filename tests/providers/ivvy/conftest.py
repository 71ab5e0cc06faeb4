from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from contactsync_ivvy import DEMO_API_KEY, DEMO_API_SECRET, IvvyAuth, IvvyEmulator

from contactsync import Outcome, Secret
from contactsync.testing import EmulatorApp, EmulatorTransport, Faults
from tests.providers.engines import upsert_async, upsert_sync

BASE = "https://api.ap-southeast-2.ivvy.com"


def ivvy_config(**options: Any) -> dict[str, Any]:
    return {
        "tenants": {
            "i": {
                "provider": "ivvy",
                "default_phone_region": "GB",
                "credentials": {"api_key": DEMO_API_KEY, "api_secret": DEMO_API_SECRET},
                "custom_fields": {"loyalty": 501, "visits": 502, "since": 503},
                "groups": {"vip": 10, "news": 11, "events": 12},
                "options": options,
                "http": {"backoff_base": 0.0, "backoff_max": 0.0},
            }
        }
    }


class Ivvy:
    """An iVvy emulator set up like the tenant above, and clients wired to it."""

    def __init__(self, faults: Faults | None = None) -> None:
        self.emulator = IvvyEmulator()
        for group_id, name in ((10, "VIP"), (11, "Newsletter"), (12, "Events"), (13, "Staff")):
            self.emulator.add_group(name, group_id)
        self.emulator.add_field(501, 2, "Loyalty", ["bronze", "silver", "gold"])
        self.emulator.add_field(502, 8, "Visits")
        self.emulator.add_field(503, 5, "Member since")
        self.app = EmulatorApp(self.emulator, faults)
        self.transport = Recording(EmulatorTransport(self.app))

    def upsert(
        self, contacts: list[Any], config: dict[str, Any] | None = None, **options: Any
    ) -> list[Outcome]:
        return upsert_sync(config or ivvy_config(**options), "i", self.transport, contacts)

    def upsert_async(
        self, contacts: list[Any], config: dict[str, Any] | None = None, **options: Any
    ) -> list[Outcome]:
        return upsert_async(config or ivvy_config(**options), "i", self.transport, contacts)

    def actions(self) -> list[str]:
        return [r.url.params["action"] for r in self.transport.requests]

    def by_external(self, external_id: str) -> dict[str, Any]:
        (found,) = [c for c in self.emulator.contacts() if c["externalId"] == external_id]
        return found


class Recording(httpx.MockTransport):
    def __init__(self, inner: EmulatorTransport) -> None:
        super().__init__(inner.app)
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return super().handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        return await super().handle_async_request(request)


@pytest.fixture
def ivvy() -> Ivvy:
    return Ivvy()


@pytest.fixture(params=["sync", "async"])
def upsert(request: pytest.FixtureRequest, ivvy: Ivvy) -> Callable[..., list[Outcome]]:
    return ivvy.upsert if request.param == "sync" else ivvy.upsert_async


def signed_client(
    emulator: IvvyEmulator,
    key: str = DEMO_API_KEY,
    secret: str = DEMO_API_SECRET,
    skew: dt.timedelta = dt.timedelta(0),
) -> httpx.Client:
    auth = IvvyAuth(key, Secret(secret), clock=lambda: dt.datetime.now(dt.UTC) + skew)
    return httpx.Client(
        base_url=BASE, auth=auth, transport=EmulatorTransport(EmulatorApp(emulator))
    )


def call(
    client: httpx.Client, action: str, body: dict[str, Any], namespace: str = "contact"
) -> httpx.Response:
    return client.post(f"/api/1.0/{namespace}?action={action}", json=body)
