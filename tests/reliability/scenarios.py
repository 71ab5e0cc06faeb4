"""One scenario per provider (and Yespo mode): a tenant config, an emulator, and a way to
read back what the emulator stored for an external id."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import attrs
from contactsync_gleantap import DEMO_API_KEY as G_KEY
from contactsync_gleantap import DEMO_APP_ID, GleantapEmulator
from contactsync_gleantap import DEMO_SECRET_KEY as G_SECRET
from contactsync_ivvy import DEMO_API_KEY as I_KEY
from contactsync_ivvy import DEMO_API_SECRET as I_SECRET
from contactsync_ivvy import IvvyEmulator
from contactsync_yespo import DEMO_API_KEY as Y_KEY
from contactsync_yespo import YespoEmulator

from contactsync.testing import Emulator

HTTP = {"backoff_base": 0.0, "backoff_max": 0.0, "max_retries": 20}


def _channel(contact: dict[str, Any], kind: str) -> Any:
    return next((c["value"] for c in contact.get("channels", []) if c["type"] == kind), None)


def _yespo() -> Emulator:
    ticks = itertools.count()
    emulator = YespoEmulator(clock=lambda: next(ticks) * 0.01)
    emulator.segment("VIP")
    return emulator


def _ivvy() -> Emulator:
    emulator = IvvyEmulator()
    emulator.add_group("VIP", 10)
    emulator.add_field(501)
    return emulator


def _yespo_view(c: dict[str, Any]) -> tuple[Any, ...]:
    fields = {f["id"]: f["value"] for f in c.get("fields", [])}
    return (c.get("externalCustomerId"), c.get("firstName"), c.get("lastName"),
            _channel(c, "email"), _channel(c, "sms"), fields.get(1001))  # fmt: skip


def _ivvy_view(c: dict[str, Any]) -> tuple[Any, ...]:
    fields = {f["fieldId"]: f["value"] for f in c.get("customFields", [])}
    return (c.get("externalId"), c.get("firstName"), c.get("lastName"), c.get("email"),
            c.get("phone"), fields.get(501))  # fmt: skip


def _gleantap_view(c: dict[str, Any]) -> tuple[Any, ...]:
    return (c.get("user_id"), c.get("first_name"), c.get("last_name"), c.get("email"),
            c.get("phone"), c.get("loyalty"))  # fmt: skip


@attrs.frozen
class Scenario:
    name: str
    tenant: dict[str, Any]
    emulator: Callable[[], Emulator]
    view: Callable[[dict[str, Any]], tuple[Any, ...]]

    def config(self, **http: Any) -> dict[str, Any]:
        table = {**self.tenant, "default_phone_region": "GB", "http": {**HTTP, **http}}
        return {"tenants": {"r": table}}


SCENARIOS = [
    Scenario("yespo-bulk", {"provider": "yespo", "credentials": {"api_key": Y_KEY},
                            "custom_fields": {"loyalty": 1001}, "groups": {"vip": "VIP"},
                            "options": {"mode": "bulk", "poll_interval": 0.0}}, _yespo, _yespo_view),
    Scenario("yespo-realtime", {"provider": "yespo", "credentials": {"api_key": Y_KEY},
                                "custom_fields": {"loyalty": 1001}, "groups": {"vip": "VIP"},
                                "options": {"mode": "realtime"}}, _yespo, _yespo_view),
    Scenario("ivvy", {"provider": "ivvy", "credentials": {"api_key": I_KEY, "api_secret": I_SECRET},
                      "custom_fields": {"loyalty": 501}, "groups": {"vip": 10}}, _ivvy, _ivvy_view),
    Scenario("gleantap", {"provider": "gleantap",
                          "credentials": {"api_key": G_KEY, "secret_key": G_SECRET},
                          "custom_fields": {"loyalty": "loyalty"},
                          "options": {"app_id": DEMO_APP_ID}}, GleantapEmulator, _gleantap_view),
]  # fmt: skip


def people(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"external_id": f"r{n}", "first_name": f"First{n}", "last_name": f"Last{n}",
         "email": f"r{n}@example.com", "phone": f"+4479111{n:05d}", "custom_fields": {"loyalty": f"v{n % 3}"}}
        for n in range(start, start + count)
    ]  # fmt: skip


def expected(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["external_id"], record["first_name"], record["last_name"], record["email"],
            record["phone"], record["custom_fields"]["loyalty"])  # fmt: skip
