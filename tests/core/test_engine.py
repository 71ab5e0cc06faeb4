from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contactsync import AsyncClient, Client, Contact, Outcome, Status
from contactsync._pump import QUEUE_SIZE
from contactsync._retry import retry_after_seconds
from contactsync._run import read_ahead
from contactsync.provider import Response
from contactsync.testing import Faults
from tests.fakeprovider import FakeEmulator, contacts, tenant_config


class Script(httpx.BaseTransport):
    """Answers /lookup from the emulator after the scripted faults for it run out."""

    def __init__(self, faults: list[Callable[[httpx.Request], httpx.Response]]) -> None:
        self.faults = faults
        self.emulator = FakeEmulator({"fake-demo-key"})
        self.seen = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.seen += 1
        if self.faults:
            return self.faults.pop(0)(request)
        return self.emulator.handle(request)


def status(
    code: int, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(code, headers=headers or {}, content=b"{}")


def drop(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def run_with(transport: httpx.BaseTransport, **overrides: Any) -> tuple[list[Outcome], list[float]]:
    waits: list[float] = []
    with Client(tenant_config(**overrides), "t", transport=transport, sleep=waits.append) as client:
        outcomes = list(client.upsert_many([Contact(external_id="a", email="a@example.com")]))
    return outcomes, waits


def test_429_with_retry_after_is_honoured() -> None:
    transport = Script([status(429, {"Retry-After": "7"})])
    outcomes, waits = run_with(transport)
    assert [o.status for o in outcomes] == [Status.CREATED]
    assert waits == [7.0]
    assert outcomes[0].requests == 3  # lookup twice, then write


def test_429_without_retry_after_backs_off_exponentially_with_jitter() -> None:
    transport = Script([status(429), status(429), status(429)])
    outcomes, waits = run_with(transport, http={"backoff_base": 1.0, "backoff_max": 100.0})
    assert outcomes[0].status is Status.CREATED
    assert len(waits) == 3
    assert all(0 <= w <= 2 ** (n + 1) for n, w in enumerate(waits))


def test_5xx_and_transport_errors_are_retried() -> None:
    transport = Script([status(500), status(503), drop, status(502)])
    outcomes, _ = run_with(transport)
    assert outcomes[0].status is Status.CREATED
    assert transport.seen == 6


def test_retries_run_out_and_the_contact_fails() -> None:
    transport = Script([status(503)] * 10)
    outcomes, waits = run_with(transport, http={"max_retries": 2, "backoff_base": 0.0})
    (outcome,) = outcomes
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.code == "request_failed"
    assert outcome.error.status_code == 503
    assert "after 3 attempt(s)" in outcome.error.message
    # Three attempts, then three more in the run's final pass over retryable failures.
    assert len(waits) == 4
    assert outcome.requests == 6


def test_transport_errors_run_out_and_the_contact_fails() -> None:
    transport = Script([drop] * 10)
    (outcome,), _ = run_with(transport, http={"max_retries": 1})
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert "ConnectError" in outcome.error.message


def test_client_errors_are_not_retried() -> None:
    transport = Script([status(400)])
    (outcome,), waits = run_with(transport)
    assert outcome.status is Status.FAILED
    assert outcome.error is not None
    assert outcome.error.code == "platform_error"
    assert waits == []
    assert transport.seen == 1


def test_retry_after_http_date() -> None:
    response = Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"})
    assert retry_after_seconds(response, now=1445412480.0) == 10.0
    assert retry_after_seconds(Response(429, headers={"Retry-After": "soon"})) is None


def test_engine_keeps_the_tenant_window(limiter_admissions: list[float]) -> None:
    # The window is checked where the engine admits a request (the limiter's own
    # stamps), not where the transport sees it: a loaded machine may delay an admitted
    # request's thread until it lands next to the following window's first request,
    # which says nothing about the engine (the headroom covers that on real platforms).
    sent: list[str] = []
    emulator = FakeEmulator({"fake-demo-key"})

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return emulator.handle(request)

    config = tenant_config(http={"requests_per_second": 2.0, "backoff_base": 0.0})
    with Client(config, "t", transport=httpx.MockTransport(handle)) as client:
        client.upsert_many(contacts(6)).drain()
    # 6 contacts = 2 batches of 3, 2 requests each: never more than 2 in any second.
    assert len(sent) == 4
    admitted = limiter_admissions
    assert len(admitted) == 4
    for first in admitted:
        assert sum(1 for t in admitted if first <= t < first + 1.0) <= 2


class Gauge(httpx.BaseTransport):
    def __init__(self) -> None:
        self.emulator = FakeEmulator({"fake-demo-key"})
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.002)
        with self.lock:
            self.now -= 1
            return self.emulator.handle(request)


def test_concurrency_never_exceeds_the_bound() -> None:
    gauge = Gauge()
    with Client(tenant_config(http={"concurrency": 3}), "t", transport=gauge) as client:
        summary = client.upsert_many(contacts(60)).drain()
    assert summary.created == 60
    assert 1 <= gauge.peak <= 3


def mixed_input() -> list[Any]:
    return [
        Contact(external_id="a", email="a@example.com", groups={"add": ["vip"]}),
        {"email": "bad"},
        {"external_id": "b", "email": "b@example.com", "custom_fields": {"loyalty": "gold"}},
        {"external_id": "c", "email": "c@example.com", "sms_status": "subscribed"},
        {"external_id": "d", "email": "d@example.com", "custom_fields": {"unmapped": 1}},
        {"external_id": "a", "email": "a@example.com"},
        {"first_name": "Nobody"},
        {"email": "e@example.com", "phone": "020 7946 0958"},
    ]


def normalized(outcomes: list[Outcome]) -> list[tuple[Any, ...]]:
    return sorted(
        (o.index, o.status, o.external_id, o.warnings, o.error and o.error.code) for o in outcomes
    )


def test_sync_and_async_engines_give_identical_outcomes() -> None:
    with Client(tenant_config(), "t") as client:
        sync = list(client.upsert_many(mixed_input()))
        sync_store = client.emulator_app.emulator.contacts()  # type: ignore[union-attr]

    async def go() -> tuple[list[Outcome], list[dict[str, Any]]]:
        async with AsyncClient(tenant_config(), "t") as client:
            outcomes = [o async for o in client.upsert_many(mixed_input())]
            return outcomes, client.emulator_app.emulator.contacts()  # type: ignore[union-attr]

    async_outcomes, async_store = asyncio.run(go())
    assert normalized(sync) == normalized(async_outcomes)
    assert sync_store == async_store
    statuses = {o.index: o.status for o in sync}
    assert statuses == {
        0: Status.CREATED,
        1: Status.REJECTED,
        2: Status.CREATED,
        3: Status.REJECTED,
        4: Status.REJECTED,
        5: Status.UPDATED,  # sent, and the platform says it existed: never "unchanged"
        6: Status.REJECTED,
        7: Status.CREATED,
    }


def test_async_engine_accepts_an_async_iterable_and_single_upsert() -> None:
    async def source() -> Any:
        for contact in contacts(5):
            yield contact

    async def go() -> tuple[int, Status]:
        async with AsyncClient(tenant_config(), "t") as client:
            summary = await client.upsert_many(source()).drain()
            single = await client.upsert(Contact(external_id="c0", email="person0@example.com"))
            return summary.created, single.status

    assert asyncio.run(go()) == (5, Status.UPDATED)


def test_warn_policy_puts_the_warning_in_the_outcome() -> None:
    with Client(tenant_config(on_unsupported="warn"), "t") as client:
        outcome = client.upsert(
            {"external_id": "c", "email": "c@example.com", "sms_status": "subscribed"}
        )
    assert outcome.status is Status.CREATED
    assert outcome.warnings == ("fake cannot express sms_status subscribed; it was not sent",)


def test_national_phone_uses_the_tenant_region() -> None:
    with Client(tenant_config(), "t") as client:
        client.upsert({"email": "e@example.com", "phone": "020 7946 0958"})
        (stored,) = client.emulator_app.emulator.contacts()  # type: ignore[union-attr]
    assert stored["phone"] == "+442079460958"


def test_streaming_does_not_read_ahead_of_the_work() -> None:
    consumed = 0

    def source() -> Iterator[Contact]:
        nonlocal consumed
        for contact in contacts(10_000):
            consumed += 1
            yield contact

    with Client(tenant_config(), "t") as client:
        run = client.upsert_many(source())
        first = [next(run) for _ in range(3)]
        assert len(first) == 3
        # batches of 3, concurrency 2: beyond the contacts already finished, only the
        # run's read-ahead and the input pump's queue are taken (plus the one the
        # pump holds while the queue is full).
        assert consumed <= run.summary.total + read_ahead(2, 3) + QUEUE_SIZE + 1
        assert consumed < 1_000


@settings(max_examples=25, deadline=None)
@given(count=st.integers(0, 40), rate=st.floats(0.0, 0.6), seed=st.integers(0, 2**16))
def test_every_input_gets_exactly_one_outcome_under_random_faults(
    count: int, rate: float, seed: int
) -> None:
    items: list[Any] = list(contacts(count))
    items[::7] = [{"email": "broken"}] * len(items[::7])
    config = tenant_config(http={"max_retries": 2, "backoff_base": 0.0})
    with Client(config, "t", faults=Faults(rate=rate, seed=seed), sleep=lambda s: None) as client:
        outcomes = list(client.upsert_many(items))
    assert sorted(o.index for o in outcomes) == list(range(count))
    for outcome in outcomes:
        assert outcome.status in Status
        if outcome.status is Status.REJECTED:
            assert items[outcome.index] == {"email": "broken"}


def test_applied_then_lost_response_does_not_duplicate() -> None:
    # The fake platform's writes are keyed by identity, so resending is safe.
    config = tenant_config(http={"max_retries": 8, "backoff_base": 0.0})
    with Client(config, "t", faults=Faults(rate=0.5, seed=3), sleep=lambda s: None) as client:
        list(client.upsert_many(contacts(30)))
        stored = client.emulator_app.emulator.contacts()  # type: ignore[union-attr]
        injected = client.emulator_app.faults_injected  # type: ignore[union-attr]
    assert injected["lost"] > 0
    assert sorted(c["external_id"] for c in stored) == sorted(f"c{n}" for n in range(30))


class Refuse(httpx.BaseTransport):
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError("plan must not send anything")


def test_plan_sends_nothing_and_shows_masked_requests() -> None:
    with Client(tenant_config(base_url="https://fake.test"), "t", transport=Refuse()) as client:
        items = list(client.plan([*contacts(4), {"email": "bad"}]))
    planned = [i for i in items if not isinstance(i, Outcome)]
    rejected = [i for i in items if isinstance(i, Outcome)]
    assert [p.contacts for p in planned] == [(0, 1, 2), (0, 1, 2), (3,), (3,)]
    assert [p.url for p in planned[:2]] == [
        "https://fake.test/lookup",
        "https://fake.test/contacts",
    ]
    assert planned[0].headers["x-key"] == "***"
    assert planned[1].body["contacts"][0]["external_id"] == "c0"
    assert [r.index for r in rejected] == [4]
    assert json.dumps([p.to_json() for p in planned])


def test_retries_are_logged_without_query_strings(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="contactsync")
    run_with(Script([status(503)]))
    assert [r.getMessage() for r in caplog.records] == [
        "tenant t (fake), input 0: POST /lookup: HTTP 503; retry 1 in 0.00s"
    ]
    (record,) = caplog.records
    # The same context as attributes, for structured handlers.
    assert (record.tenant, record.provider, record.input_indexes) == ("t", "fake", [0])  # type: ignore[attr-defined]


def test_a_value_that_cannot_be_sent_stays_inside_its_contact() -> None:
    import decimal  # noqa: PLC0415

    records: list[Any] = [
        {"external_id": "a", "email": "a@example.com"},
        {"external_id": "b", "email": "b@example.com",
         "provider_options": {"fake": {"price": decimal.Decimal("1.5")}}},
        {"external_id": "c", "email": "c@example.com"},
    ]  # fmt: skip
    with Client(tenant_config(), "t") as client:
        outcomes = sorted(client.upsert_many(records), key=lambda o: o.index)
    assert [o.status for o in outcomes] == [Status.CREATED, Status.REJECTED, Status.CREATED]
    assert outcomes[1].error is not None
    assert outcomes[1].error.field == "provider_options.fake.price"


def test_an_error_from_the_input_is_raised_after_every_taken_contact_has_its_outcome() -> None:
    class Broken(Exception):
        pass

    def source() -> Iterator[Contact]:
        yield from contacts(25)
        raise Broken("the database went away")

    seen: list[Outcome] = []
    with Client(tenant_config(), "t") as client:
        run = client.upsert_many(source())
        with pytest.raises(Broken):
            seen.extend(run)
    assert sorted(o.index for o in seen) == list(range(25))
    assert all(o.ok for o in seen)
