"""The shared emulator harness: request-rate windows, their stats, and enforcement."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from contactsync.testing import (
    Emulator,
    EmulatorApp,
    EmulatorTransport,
    Faults,
    WindowLimit,
    serve_in_thread,
)


class Echo(Emulator):
    """Answers 200 to everything and counts what it applied."""

    def __init__(self) -> None:
        self.applied = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.applied += 1
        return httpx.Response(200, json={"ok": True})

    def contacts(self) -> list[dict[str, Any]]:
        return []

    def reset(self) -> None:
        self.applied = 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def client(app: EmulatorApp) -> httpx.Client:
    return httpx.Client(base_url="http://emulator", transport=EmulatorTransport(app))


def test_stats_report_the_busiest_one_second_window() -> None:
    clock = Clock()
    app = EmulatorApp(Echo(), clock=clock)
    with client(app) as api:
        for t in (0.0, 0.1, 0.2, 0.9, 1.05, 1.1, 3.0):
            clock.now = t
            api.get("/x")
        stats = api.get("/__emulator__/stats").json()
    # The window is (now - 1 s, now]: at 1.05 it holds 0.1, 0.2, 0.9 and 1.05.
    assert stats["requests"] == 7
    assert stats["max_requests_per_second"] == 4
    assert stats["answered_429"] == 0
    assert stats == app.stats()


def test_an_enforced_limit_answers_429_without_applying() -> None:
    clock, echo = Clock(), Echo()
    app = EmulatorApp(echo, rate_limits=[WindowLimit(3, message="slow down")], clock=clock)
    with client(app) as api:
        codes = [api.get("/x").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        assert api.get("/x").text == "slow down"
        clock.now = 1.0  # the window has slid past the first three
        assert api.get("/x").status_code == 200
    assert echo.applied == 4
    stats = app.stats()
    assert stats["answered_429"] == 3
    (window,) = stats["rate_limits"]
    assert (window["limit"], window["max_in_window"], window["rejected"]) == (3, 3, 3)


def test_measured_only_when_not_enforced() -> None:
    clock = Clock()
    app = EmulatorApp(Echo(), rate_limits=[WindowLimit(3)], enforce_rate_limits=False, clock=clock)
    with client(app) as api:
        assert {api.get("/x").status_code for _ in range(10)} == {200}
    (window,) = app.stats()["rate_limits"]
    assert (window["max_in_window"], window["rejected"]) == (10, 0)


def test_a_request_counts_against_the_first_limit_that_covers_it() -> None:
    clock = Clock()
    limits = [WindowLimit(2, name="search", methods=frozenset({"GET"}), path="/search"),
              WindowLimit(3, name="shared")]  # fmt: skip
    app = EmulatorApp(Echo(), rate_limits=limits, clock=clock)
    with client(app) as api:
        searches = [api.get("/search").status_code for _ in range(3)]
        writes = [api.post("/search").status_code for _ in range(4)]
    assert searches == [200, 200, 429]
    assert writes == [200, 200, 200, 429]  # POST is not the search: the shared budget
    by_name = {w["name"]: w for w in app.stats()["rate_limits"]}
    assert (by_name["search"]["requests"], by_name["shared"]["requests"]) == (2, 3)


def test_fault_429s_are_counted_too() -> None:
    app = EmulatorApp(Echo(), Faults(rate=1.0, seed=1, kinds=("429",)), clock=Clock())
    with client(app) as api:
        assert [api.get("/x").status_code for _ in range(4)] == [429] * 4
    assert app.stats()["answered_429"] == 4


def test_stats_reset() -> None:
    app = EmulatorApp(Echo(), clock=Clock())
    with client(app) as api:
        api.get("/x")
        assert api.post("/__emulator__/stats/reset").status_code == 200
        assert api.get("/__emulator__/stats").json()["requests"] == 0


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        WindowLimit(0)


def test_loopback_server_serves_stats() -> None:
    app = EmulatorApp(Echo(), rate_limits=[WindowLimit(1000)])
    server, url = serve_in_thread(app)
    try:
        assert server.app is app
        for _ in range(3):
            assert httpx.get(f"{url}/x").status_code == 200
        stats = json.loads(httpx.get(f"{url}/__emulator__/stats").content)
        assert stats["requests"] == 3
        assert stats["rate_limits"][0]["limit"] == 1000
    finally:
        server.shutdown()
        server.server_close()
