"""Three processes of one tenant share one window through Redis; with the in-process
store each keeps its own and together they overrun the platform's limit."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import redis

from contactsync._emulator import Emulator, EmulatorApp, WindowLimit, json_response, serve_in_thread
from tests.scale.limited_client import PLATFORM_LIMIT

pytestmark = pytest.mark.scale_out

PROCESSES = 3
EACH = 40


class _Pong(Emulator):
    def handle(self, request: httpx.Request) -> httpx.Response:
        return json_response(200, {"pong": True})

    def contacts(self) -> list[dict[str, Any]]:
        return []

    def reset(self) -> None:
        return None

    def rate_limits(self) -> Sequence[WindowLimit]:
        return (WindowLimit(PLATFORM_LIMIT, name="documented"),)


@pytest.fixture
def platform() -> Iterator[tuple[EmulatorApp, str]]:
    app = EmulatorApp(_Pong())
    server, url = serve_in_thread(app)
    try:
        yield app, url
    finally:
        server.shutdown()
        server.server_close()


def _run_processes(url: str, storage: str) -> list[int]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.scale.limited_client", url, storage, str(EACH)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    statuses: list[int] = []
    for process in processes:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        statuses += [int(s) for s in out.split()]
    return statuses


@pytest.mark.timeout(120)
def test_processes_on_redis_share_one_window(
    platform: tuple[EmulatorApp, str], redis_url: str
) -> None:
    app, url = platform
    # 120 requests at 15 a second shared: about 8 s.
    redis.Redis.from_url(redis_url).flushdb()
    statuses = _run_processes(url, redis_url)
    assert statuses == [200] * (PROCESSES * EACH)
    window = app.stats()["rate_limits"][0]
    assert window["rejected"] == 0
    assert window["max_in_window"] <= PLATFORM_LIMIT


@pytest.mark.timeout(120)
def test_processes_with_their_own_windows_overrun_the_limit(
    platform: tuple[EmulatorApp, str],
) -> None:
    app, url = platform
    statuses = _run_processes(url, "memory://")
    assert 429 in statuses
    assert app.stats()["rate_limits"][0]["rejected"] > 0
