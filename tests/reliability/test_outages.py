"""Retries that outlast real outages, split retries, fail-fast, and deadlines."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from contactsync_yespo import DEMO_API_KEY as YESPO_KEY
from contactsync_yespo import YespoEmulator

from contactsync import Client, Status
from contactsync._fault_kinds import KINDS
from contactsync.testing import EmulatorApp, Faults, serve_in_thread
from tests.reliability.scenarios import SCENARIOS, Scenario, expected, people

IDS = [s.name for s in SCENARIOS]


class FakeTime:
    """A clock that only moves when the engine sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class Outage(httpx.BaseTransport):
    """Every request fails (503 or a dropped connection) until ``until`` on the fake
    clock, then the emulator answers."""

    def __init__(self, app: EmulatorApp, time_: FakeTime, until: float) -> None:
        self.app = app
        self.time = time_
        self.until = until
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.time.now < self.until:
            self.refused += 1
            if self.refused % 2:
                raise httpx.ConnectError("refused (test outage)", request=request)
            return httpx.Response(503, json={"error": "down (test outage)"})
        return self.app(request)


@pytest.mark.parametrize("seconds", [12.0, 60.0])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_an_outage_longer_than_the_old_budget_fails_nothing(
    scenario: Scenario, seconds: float
) -> None:
    fake = FakeTime()
    app = EmulatorApp(scenario.emulator())
    transport = Outage(app, fake, until=seconds)
    records = people(20)
    http = {"backoff_base": 0.5, "backoff_max": 8.0, "max_retries": None, "breaker_after": 600}
    with Client(
        scenario.config(**http), "r", transport=transport, sleep=fake.sleep, clock=fake.clock
    ) as client:
        outcomes = list(client.upsert_many(records))
    # The outage really outlasted the old budget (6 attempts within about 8 s).
    assert transport.refused > 0
    assert fake.now >= seconds > 8
    assert [o for o in outcomes if not o.ok] == []
    assert sorted(scenario.view(c) for c in app.emulator.contacts()) == sorted(
        expected(r) for r in records
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_thirty_percent_faults_of_every_kind_fail_and_duplicate_nothing(
    scenario: Scenario, seed: int
) -> None:
    app = EmulatorApp(scenario.emulator(), Faults(rate=0.3, seed=seed, kinds=KINDS))
    records = people(5000)
    http = {"max_retries": None, "backoff_base": 0.0, "backoff_max": 0.0}
    with Client(scenario.config(**http), "r", emulator=app, sleep=lambda s: None) as client:
        outcomes = list(client.upsert_many(records))
    assert sum(app.faults_injected.values()) > 0
    assert sorted(o.index for o in outcomes) == list(range(len(records)))
    assert [o for o in outcomes if not o.ok][:3] == []
    stored = [scenario.view(c) for c in app.emulator.contacts()]
    assert Counter(Counter(v[0] for v in stored).values()) == {1: len(records)}
    assert sorted(stored) == sorted(expected(r) for r in records)


def test_a_bulk_with_one_bad_contact_fails_that_one_and_writes_the_rest() -> None:
    scenario = SCENARIOS[0]  # Yespo bulk
    app = EmulatorApp(scenario.emulator())
    records = people(40)
    bad = records[23]["external_id"]
    bulks = Counter[str]()

    def refuse_the_bad_one(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/contacts" and request.method == "POST":
            bulks["posts"] += 1
            if f'"{bad}"'.encode() in request.content:
                return httpx.Response(400, json={"error": "invalid contact in request"})
        return app(request)

    transport = httpx.MockTransport(refuse_the_bad_one)
    with Client(scenario.config(), "r", transport=transport, sleep=lambda s: None) as client:
        outcomes = sorted(client.upsert_many(records), key=lambda o: o.index)
    failed = [o for o in outcomes if not o.ok]
    assert [o.external_id for o in failed] == [bad]
    assert failed[0].error is not None
    assert failed[0].error.code == "platform_error"
    assert "invalid contact" in failed[0].error.message
    stored = {scenario.view(c)[0] for c in app.emulator.contacts()}
    assert stored == {r["external_id"] for r in records} - {bad}
    # Halving 40 down to the one bad contact takes a handful of requests, not 40.
    assert bulks["posts"] <= 2 * 7


def test_a_body_every_half_refuses_alike_stops_splitting() -> None:
    scenario = SCENARIOS[0]
    app = EmulatorApp(scenario.emulator())
    posts = Counter[str]()

    def refuse_all(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/contacts" and request.method == "POST":
            posts["n"] += 1
            return httpx.Response(400, json={"error": "contactFields is invalid"})
        return app(request)

    with Client(
        scenario.config(), "r", transport=httpx.MockTransport(refuse_all), sleep=lambda s: None
    ) as client:
        outcomes = list(client.upsert_many(people(64)))
    assert {o.status for o in outcomes} == {Status.FAILED}
    assert posts["n"] == 3  # the batch, then its two halves: refused alike, so stop


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_refused_credentials_stop_sending_at_once(scenario: Scenario) -> None:
    app = EmulatorApp(scenario.emulator())
    sent = Counter[str]()

    def counting(request: httpx.Request) -> httpx.Response:
        sent["n"] += 1
        return app(request)

    config = scenario.config(concurrency=8)
    credentials = config["tenants"]["r"]["credentials"]
    config["tenants"]["r"]["credentials"] = {k: v + "-wrong" for k, v in credentials.items()}
    if scenario.name.startswith("yespo"):
        config["tenants"]["r"]["options"] = {
            **config["tenants"]["r"]["options"],
            "mode": "realtime",
        }
    with Client(
        config, "r", transport=httpx.MockTransport(counting), sleep=lambda s: None
    ) as client:
        outcomes = list(client.upsert_many(people(1000)))
    assert len(outcomes) == 1000
    assert {o.error.code for o in outcomes if o.error} == {"auth_failed"}
    assert all(o.status is Status.FAILED for o in outcomes)
    assert "credentials" in (outcomes[0].error.message if outcomes[0].error else "")
    assert sent["n"] <= 8 + 1


def _silent_server(trickle: bool) -> tuple[str, Callable[[], None]]:
    """Accepts connections and never answers, or starts an answer and then trickles one
    header byte every 0.1 s (no per-read timeout ever fires)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        held: list[socket.socket] = []
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                for c in held if trickle else ():
                    with contextlib.suppress(OSError):
                        c.send(b"a")
                continue
            if trickle:
                connection.send(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            held.append(connection)
        for c in held:
            c.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    host, port = listener.getsockname()

    def close() -> None:
        stop.set()
        thread.join(10)

    return f"http://{host}:{port}", close


@pytest.mark.parametrize("trickle", [False, True])
def test_a_host_that_never_answers_ends_within_the_budget(trickle: bool) -> None:
    scenario = next(s for s in SCENARIOS if s.name == "gleantap")
    url, close = _silent_server(trickle)
    config = scenario.config(
        attempt_timeout=0.3, timeout=5.0 if trickle else 0.2, retry_for=1.0,
        breaker_after=0.5, backoff_base=0.05, backoff_max=0.1, max_retries=None,
    )  # fmt: skip
    config["tenants"]["r"]["base_url"] = url
    started = time.monotonic()
    try:
        with Client(config, "r") as client:
            outcomes = list(client.upsert_many(people(200)))
    finally:
        close()
    elapsed = time.monotonic() - started
    assert len(outcomes) == 200
    assert {o.status for o in outcomes} == {Status.FAILED}
    codes = Counter(o.error.code for o in outcomes if o.error)
    assert codes["platform_unreachable"] > 150, codes
    # Each request's budget is 1 s and the breaker opens after 0.5 s: the final pass
    # adds one more round. A generous bound, only to prove the run ends on its own.
    assert elapsed < 60


def test_yespo_realtime_at_concurrency_16_keeps_the_documented_window() -> None:
    # A real clock on both sides: the emulator enforces Yespo's 200 requests per
    # second (answering 429 above it) and measures its busiest one-second window.
    emulator = YespoEmulator()
    emulator.segment("VIP")
    app = EmulatorApp(emulator, enforce_rate_limits=True)
    server, url = serve_in_thread(app)
    tenant = {
        "provider": "yespo", "base_url": url, "credentials": {"api_key": YESPO_KEY},
        "custom_fields": {"loyalty": 1001}, "options": {"mode": "realtime"},
        "default_phone_region": "GB", "http": {"concurrency": 16},
    }  # fmt: skip
    try:
        with Client({"tenants": {"r": tenant}}, "r") as client:
            outcomes = list(client.upsert_many(people(1000)))
    finally:
        server.shutdown()
        server.server_close()
    stats = app.stats()
    assert [o for o in outcomes if not o.ok] == []
    assert stats["requests"] >= 1000
    assert stats["answered_429"] == 0
    assert 0 < stats["max_requests_per_second"] <= 200
