"""iVvy through recorded cassettes, replayed offline with ``record_mode="none"``.

Signed headers (date, MD5, signature) change with every request; the matcher ignores
headers, so replay works on any day. To record again from the emulator:
``CONTACTSYNC_RECORD=1 uv run pytest tests/providers/ivvy/test_cassettes.py``; against a
real account: ``CONTACTSYNC_RECORD=real CONTACTSYNC_IVVY_API_KEY=… CONTACTSYNC_IVVY_API_SECRET=…``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from contactsync_ivvy import DEMO_API_KEY, DEMO_API_SECRET

from contactsync import AsyncClient, Client
from contactsync.testing import EmulatorTransport, make_vcr
from tests.providers.ivvy.conftest import Ivvy, ivvy_config
from tests.providers.recording import for_real, record_mode, recording
from tests.providers.recording import transport as recorded_transport

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "ivvy"
RECORDING = recording()

CONTACTS: list[dict[str, Any]] = [
    {"external_id": "cus-1", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
     "email_status": "subscribed", "groups": {"add": ["vip"]}, "custom_fields": {"loyalty": "gold"}},
    {"external_id": "cus-2", "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com",
     "sms_status": "no_marketing", "groups": ["news", "events"]},
    {"external_id": "cus-3", "email_status": "unsubscribed"},
]  # fmt: skip


def config() -> dict[str, Any]:
    data = for_real(ivvy_config(), "i")
    data["tenants"]["i"]["http"]["concurrency"] = 1  # one order of requests to record
    return data


def transport() -> httpx.MockTransport | None:
    return recorded_transport(lambda: EmulatorTransport(Ivvy().app))


def test_replay_sync() -> None:
    recorder = make_vcr(CASSETTES, record_mode=record_mode())
    with (
        recorder.use_cassette("upsert_twice.yaml"),
        Client(config(), "i", transport=transport()) as client,
    ):
        first = sorted(client.upsert_many(CONTACTS), key=lambda o: o.index)
        second = sorted(client.upsert_many(CONTACTS), key=lambda o: o.index)
    assert [o.status.value for o in first] == ["written", "written", "rejected"]
    assert [o.status.value for o in second] == ["updated", "updated", "rejected"]
    assert [o.remote_id for o in first[:2]] == [o.remote_id for o in second[:2]]
    assert first[2].error is not None
    assert first[2].error.code == "invalid_contact"


def test_replay_async() -> None:
    if RECORDING:
        pytest.skip("replay only")

    async def go() -> list[str]:
        recorder = make_vcr(CASSETTES, record_mode="none")
        with recorder.use_cassette("upsert_twice.yaml"):
            async with AsyncClient(config(), "i") as client:
                return [o.status.value for o in sorted([x async for x in client.upsert_many(CONTACTS)],
                                                       key=lambda o: o.index)]  # fmt: skip

    assert asyncio.run(go()) == ["written", "written", "rejected"]


def test_cassettes_hold_no_credential() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text()
        assert DEMO_API_KEY not in text
        assert DEMO_API_SECRET not in text
        assert "IWS " not in text
        assert "REDACTED" in text
