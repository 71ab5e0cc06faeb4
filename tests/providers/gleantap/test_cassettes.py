"""Gleantap through recorded cassettes, replayed offline with ``record_mode="none"``.

To record again from the emulator:
``CONTACTSYNC_RECORD=1 uv run pytest tests/providers/gleantap/test_cassettes.py``; against a
real account: ``CONTACTSYNC_RECORD=real CONTACTSYNC_GLEANTAP_API_KEY=… CONTACTSYNC_GLEANTAP_SECRET_KEY=…``
(and the tenant's ``app_id`` in ``tests/providers/gleantap/conftest.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from contactsync_gleantap import DEMO_API_KEY, DEMO_SECRET_KEY

from contactsync import AsyncClient, Client
from contactsync.testing import EmulatorTransport, make_vcr
from tests.providers.gleantap.conftest import Gleantap, gleantap_config
from tests.providers.recording import for_real, record_mode, recording
from tests.providers.recording import transport as recorded_transport
from tests.providers.spec import gleantap_spec, require

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "gleantap"
RECORDING = recording()

CONTACTS: list[dict[str, Any]] = [
    {"external_id": "cus-1", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
     "email_status": "subscribed", "tags": {"add": ["vip"], "remove": ["trial"]}},
    {"first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com", "sms_status": "unsubscribed"},
    {"first_name": "Alan", "email": "alan@example.com"},
]  # fmt: skip


def config() -> dict[str, Any]:
    data = for_real(gleantap_config(), "g")
    data["tenants"]["g"]["http"]["concurrency"] = 1
    return data


def transport() -> httpx.MockTransport | None:
    return recorded_transport(lambda: EmulatorTransport(Gleantap().app))


def test_replay_sync() -> None:
    recorder = make_vcr(CASSETTES, record_mode=record_mode())
    with (
        recorder.use_cassette("upsert_twice.yaml"),
        Client(config(), "g", transport=transport()) as client,
    ):
        first = sorted(client.upsert_many(CONTACTS), key=lambda o: o.index)
        second = sorted(client.upsert_many(CONTACTS), key=lambda o: o.index)
    # The look-ups before each write prove which: new on the first run, existing after.
    assert [o.status.value for o in first] == ["created", "created", "rejected"]
    assert [o.status.value for o in second] == ["updated", "updated", "rejected"]
    assert [o.remote_id for o in first[:2]] == [o.remote_id for o in second[:2]]


def test_replay_async() -> None:
    if RECORDING:
        pytest.skip("replay only")

    async def go() -> list[str]:
        with make_vcr(CASSETTES).use_cassette("upsert_twice.yaml"):
            async with AsyncClient(config(), "g") as client:
                outcomes = [o async for o in client.upsert_many(CONTACTS)]
        return [o.status.value for o in sorted(outcomes, key=lambda o: o.index)]

    assert asyncio.run(go()) == ["created", "created", "rejected"]


def test_cassettes_hold_no_credential_and_validate() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert files
    spec = gleantap_spec()
    for path in files:
        text = path.read_text()
        assert DEMO_API_KEY not in text
        assert DEMO_SECRET_KEY not in text
        assert text.count("REDACTED") >= 2
        if spec is not None:
            for interaction in yaml.safe_load(text)["interactions"]:
                recorded = interaction["request"]
                spec.validate(httpx.Request(recorded["method"], recorded["uri"],
                                            content=(recorded["body"] or "").encode()))  # fmt: skip
    require(spec)
