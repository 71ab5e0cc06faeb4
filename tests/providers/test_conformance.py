"""Our three providers run the conformance suite any provider can run."""

from __future__ import annotations

from typing import Any, ClassVar

from contactsync.testing.conformance import ProviderConformance

PEOPLE: list[dict[str, Any]] = [
    {"external_id": f"k{n}", "first_name": f"First{n}", "last_name": f"Last{n}",
     "email": f"k{n}@example.com", "phone": f"+4479111234{n:02d}"}
    for n in range(6)
]  # fmt: skip


class TestYespoConformance(ProviderConformance):
    provider = "yespo"
    tenant: ClassVar[dict[str, Any]] = {"options": {"poll_interval": 0.01}}
    contacts = PEOPLE
    unsupported: ClassVar[list[dict[str, Any]]] = [
        {**PEOPLE[0], "tags": ["x"]},
        {**PEOPLE[1], "sms_status": "subscribed"},
    ]


class TestIvvyConformance(ProviderConformance):
    provider = "ivvy"
    contacts = PEOPLE
    unsupported: ClassVar[list[dict[str, Any]]] = [
        {**PEOPLE[0], "email_status": "pending"},
        {**PEOPLE[1], "language": "en"},
    ]


class TestGleantapConformance(ProviderConformance):
    provider = "gleantap"
    tenant: ClassVar[dict[str, Any]] = {"options": {"app_id": "conformance-app"}}
    contacts = PEOPLE
    unsupported: ClassVar[list[dict[str, Any]]] = [
        {**PEOPLE[0], "groups": {"add": ["x"]}},
        {**PEOPLE[1], "email_status": "bounced"},
    ]
