from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from contactsync_gleantap import DEMO_API_KEY, DEMO_APP_ID, DEMO_SECRET_KEY, GleantapEmulator

from contactsync import Outcome
from contactsync.testing import EmulatorApp, EmulatorTransport, Faults
from tests.providers.engines import upsert_async, upsert_sync
from tests.providers.spec import ValidatingTransport, gleantap_spec

BASE = "https://api.gleantap.com"


def gleantap_config(**options: Any) -> dict[str, Any]:
    options.setdefault("app_id", DEMO_APP_ID)
    return {
        "tenants": {
            "g": {
                "provider": "gleantap",
                "default_phone_region": "GB",
                "credentials": {"api_key": DEMO_API_KEY, "secret_key": DEMO_SECRET_KEY},
                "custom_fields": {"loyalty": "loyalty_level", "visits": "visits", "since": "since"},
                "options": options,
                "http": {"backoff_base": 0.0, "backoff_max": 0.0},
            }
        }
    }


class Gleantap:
    def __init__(self, faults: Faults | None = None) -> None:
        self.emulator = GleantapEmulator()
        self.app = EmulatorApp(self.emulator, faults)
        self.transport = ValidatingTransport(gleantap_spec(), EmulatorTransport(self.app))

    def upsert(
        self, contacts: list[Any], config: dict[str, Any] | None = None, **options: Any
    ) -> list[Outcome]:
        return upsert_sync(config or gleantap_config(**options), "g", self.transport, contacts)

    def upsert_async(
        self, contacts: list[Any], config: dict[str, Any] | None = None, **options: Any
    ) -> list[Outcome]:
        return upsert_async(config or gleantap_config(**options), "g", self.transport, contacts)

    def paths(self) -> list[str]:
        return [r.url.path.rsplit("/", 1)[1] for r in self.transport.requests]

    def bodies(self, method: str) -> list[dict[str, Any]]:
        return [
            json.loads(r.content) for r in self.transport.requests if r.url.path.endswith(method)
        ]


@pytest.fixture
def gleantap() -> Gleantap:
    return Gleantap()


@pytest.fixture(params=["sync", "async"])
def upsert(request: pytest.FixtureRequest, gleantap: Gleantap) -> Callable[..., list[Outcome]]:
    return gleantap.upsert if request.param == "sync" else gleantap.upsert_async


def direct(
    emulator: GleantapEmulator, key: str = DEMO_API_KEY, secret: str = DEMO_SECRET_KEY
) -> httpx.Client:
    return httpx.Client(base_url=BASE, headers={"X-API-KEY": key, "X-SECRET-KEY": secret},
                        transport=EmulatorTransport(EmulatorApp(emulator)))  # fmt: skip
