"""Yespo through recorded cassettes, replayed offline with ``record_mode="none"``.

The cassettes under ``cassettes/yespo/`` were recorded from the Yespo emulator. To
record them again: ``CONTACTSYNC_RECORD=1 uv run pytest tests/providers/yespo/test_cassettes.py``;
against a real account: ``CONTACTSYNC_RECORD=real CONTACTSYNC_YESPO_API_KEY=… uv run pytest …``
(see ``tests/providers/recording.py``).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from contactsync_yespo import DEMO_API_KEY, YespoEmulator

from contactsync import AsyncClient, Client
from contactsync.testing import EmulatorApp, EmulatorTransport, make_vcr
from tests.providers.recording import for_real, record_mode, recording
from tests.providers.recording import transport as recorded_transport
from tests.providers.spec import require, yespo_spec
from tests.providers.yespo.conftest import yespo_config

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "yespo"
RECORDING = recording()

CONTACTS: list[dict[str, Any]] = [
    {"external_id": "cus-1", "email": "ada@example.com", "first_name": "Ada",
     "custom_fields": {"loyalty": "gold"}, "groups": {"add": ["vip"]}},
    {"external_id": "cus-2", "email": "grace@example.com", "first_name": "Grace",
     "email_status": "unsubscribed"},
    {"external_id": "cus-3", "email": "alan@example.com", "first_name": "123"},
]  # fmt: skip


def emulator_transport() -> EmulatorTransport:
    ticks = itertools.count()
    emulator = YespoEmulator(clock=lambda: next(ticks) * 0.01)
    for name in ("VIP", "Newsletter"):
        emulator.segment(name)
    return EmulatorTransport(EmulatorApp(emulator))


def transport() -> httpx.MockTransport | None:
    return recorded_transport(emulator_transport)


@pytest.mark.parametrize("mode", ["realtime", "bulk"])
def test_replay_sync(mode: str) -> None:
    recorder = make_vcr(CASSETTES, record_mode=record_mode())
    config = for_real(yespo_config(mode=mode), "y")
    config["tenants"]["y"]["http"]["concurrency"] = 1  # one order of requests to record
    with (
        recorder.use_cassette(f"{mode}.yaml"),
        Client(config, "y", transport=transport(), sleep=lambda s: None) as client,
    ):
        first = sorted(client.upsert_many(CONTACTS), key=lambda o: o.index)
        second = sorted(client.upsert_many(CONTACTS), key=lambda o: o.index)
    # Yespo never says whether it created: written, the first time and again (a 409
    # in real time, verified: sent all the same, so not "unchanged").
    assert [o.status.value for o in first] == ["written", "written", "failed"]
    assert [o.status.value for o in second] == ["written", "written", "failed"]
    assert first[0].remote_id is not None
    assert first[2].error is not None
    assert "firstName is invalid" in first[2].error.message


def test_replay_async_matches_the_same_cassette() -> None:
    async def no_sleep(seconds: float) -> None:
        del seconds

    async def go() -> list[str]:
        recorder = make_vcr(CASSETTES, record_mode="none")
        config = yespo_config(mode="realtime")
        config["tenants"]["y"]["http"]["concurrency"] = 1
        with recorder.use_cassette("realtime.yaml", allow_playback_repeats=True):
            async with AsyncClient(config, "y", sleep=no_sleep) as client:
                return sorted(
                    o.status.value for o in [x async for x in client.upsert_many(CONTACTS)]
                )

    if RECORDING:
        pytest.skip("replay only")
    assert asyncio.run(go()) == ["failed", "written", "written"]


def test_cassettes_hold_no_credential() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text()
        assert DEMO_API_KEY not in text
        assert "Basic " not in text
        assert "REDACTED" in text


def test_recorded_requests_validate_against_the_spec() -> None:
    spec = require(yespo_spec())
    checked = 0
    for path in sorted(CASSETTES.glob("*.yaml")):
        for interaction in yaml.safe_load(path.read_text())["interactions"]:
            recorded = interaction["request"]
            body = recorded["body"] or ""
            spec.validate(httpx.Request(recorded["method"], recorded["uri"], content=body.encode()))
            checked += 1
    assert checked > 10
