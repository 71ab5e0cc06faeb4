from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from contactsync_yespo import DEMO_API_KEY, YespoEmulator

from contactsync import Client, Outcome
from contactsync.testing import EmulatorApp, EmulatorTransport, Faults
from tests.providers.engines import upsert_async, upsert_sync
from tests.providers.spec import ValidatingTransport, yespo_spec

BASE = "https://api.yespo.io"


def yespo_config(tenant: str = "y", **options: Any) -> dict[str, Any]:
    options.setdefault("poll_interval", 0.01)
    return {
        "tenants": {
            tenant: {
                "provider": "yespo",
                "base_url": BASE,
                "default_phone_region": "GB",
                "credentials": {"api_key": DEMO_API_KEY},
                "custom_fields": {"loyalty": 1001, "visits": 1002, "since": 1003, "notes": 1004},
                "groups": {"vip": "VIP", "news": "Newsletter"},
                "options": options,
                "http": {"backoff_base": 0.0, "backoff_max": 0.0},
            }
        }
    }


class Yespo:
    """A Yespo emulator with a validating transport, and clients wired to it."""

    def __init__(self, faults: Faults | None = None) -> None:
        # A synthetic clock, 10 ms per read (the harness's rate window and the emulator
        # each read it once a request): tests never wait, and stay under the emulator's
        # 200 requests/s however fast they run.
        ticks = itertools.count()
        self.emulator = YespoEmulator(clock=lambda: next(ticks) * 0.01)
        for name in ("VIP", "Newsletter"):
            self.emulator.segment(name)
        self.app = EmulatorApp(self.emulator, faults)
        self.transport = ValidatingTransport(yespo_spec(), EmulatorTransport(self.app))

    def client(self, **options: Any) -> Client:
        return Client(yespo_config(**options), "y", transport=self.transport, sleep=lambda s: None)

    def upsert(self, contacts: list[Any], **options: Any) -> list[Outcome]:
        return upsert_sync(yespo_config(**options), "y", self.transport, contacts)

    def upsert_async(self, contacts: list[Any], **options: Any) -> list[Outcome]:
        return upsert_async(yespo_config(**options), "y", self.transport, contacts)

    def writes(self) -> list[httpx.Request]:
        """Requests sent, less the setup's read-only segment and field look-ups."""
        return [
            r
            for r in self.transport.requests
            if not (r.method == "GET" and r.url.path in ("/api/v1/groups", "/api/v1/addressbooks"))
        ]

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.transport.requests]

    def stored(self) -> list[dict[str, Any]]:
        return self.emulator.contacts()

    def by_external(self, external_id: str) -> dict[str, Any]:
        (found,) = [c for c in self.stored() if c.get("externalCustomerId") == external_id]
        return found


@pytest.fixture
def yespo() -> Yespo:
    return Yespo()


@pytest.fixture(params=["sync", "async"])
def upsert(request: pytest.FixtureRequest, yespo: Yespo) -> Callable[..., list[Outcome]]:
    """Upsert through the sync or the async engine (each test runs with both)."""
    return yespo.upsert if request.param == "sync" else yespo.upsert_async


def direct(emulator: YespoEmulator, key: str = DEMO_API_KEY) -> httpx.Client:
    """A plain client on the emulator, for testing the emulator by Yespo's documentation."""
    return httpx.Client(
        base_url=BASE, transport=EmulatorTransport(EmulatorApp(emulator)), auth=("any", key)
    )


def channel(contact: dict[str, Any], kind: str) -> str | None:
    return next((c["value"] for c in contact.get("channels", []) if c["type"] == kind), None)
