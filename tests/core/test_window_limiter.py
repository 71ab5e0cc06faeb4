"""build_limiter: exact sliding windows, per tenant, per method and path.

``limits`` reads ``time.time()`` itself (its clock cannot be injected), so most tests
here replace ``time.time`` with a fake clock that only the limiter's injected
``sleep`` moves: timings are then exact and instant. One test runs on real time and
asserts only window counts, never speed.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Awaitable, Callable, Sequence

import pytest
from limits.aio.storage import MemoryStorage

from contactsync._ratelimit import (
    Limiter,
    NoLimiter,
    RateLimit,
    WindowLimiter,
    build_limiter,
)

SEARCH = RateLimit(50, 1, "GET", "/api/v1/contacts")
ALL = RateLimit(200, 1)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    clock = FakeTime()
    monkeypatch.setattr(time, "time", clock.time)
    return clock


def most_in_any_window(stamps: Sequence[float], per: float) -> int:
    """The largest number of stamps inside any half-open window [t, t + per)."""
    ordered = sorted(stamps)
    return max(
        (bisect.bisect_left(ordered, start + per) - i for i, start in enumerate(ordered)),
        default=0,
    )


async def acquire_all(
    limiter: Limiter,
    total: int,
    *,
    tasks: int,
    clock: Callable[[], float],
    request: Callable[[int], tuple[str, str]] = lambda _: ("POST", "/api/v1/contact"),
) -> list[tuple[float, str, str]]:
    """``tasks`` concurrent workers acquiring ``total`` slots between them."""
    stamps: list[tuple[float, str, str]] = []
    counter = iter(range(total))

    async def worker() -> None:
        for n in counter:
            method, path = request(n)
            await limiter.acquire(method, path)
            stamps.append((clock(), method, path))

    await asyncio.gather(*(worker() for _ in range(tasks)))
    return stamps


def run(coro: Awaitable[object]) -> object:
    async def main() -> object:
        return await coro

    return asyncio.run(main())


# --- RateLimit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "method", "path", "expected"),
    [
        (ALL, "GET", "/anything?x=1", True),
        (SEARCH, "GET", "/api/v1/contacts", True),
        (SEARCH, "get", "/api/v1/contacts?externalCustomerId=7&maxrows=500", True),
        (SEARCH, "POST", "/api/v1/contacts", False),
        (SEARCH, "GET", "/api/v1/contacts/email", False),
        (SEARCH, "GET", "/api/v1/contact", False),
        (RateLimit(9, 1, "put", "/api/v1/contact/*"), "PUT", "/api/v1/contact/42", True),
        (RateLimit(9, 1, "*", "/api/v1/contacts*"), "POST", "/api/v1/contacts/upload", True),
        (RateLimit(9, 1, "*", "/api/v1/contacts*"), "POST", "/API/V1/CONTACTS", False),
    ],
)
def test_rate_limit_matching(limit: RateLimit, method: str, path: str, expected: bool) -> None:
    assert limit.matches(method, path) is expected


@pytest.mark.parametrize(
    ("rate", "per", "problem"),
    [(0, 1, "rate"), (1.5, 1, "rate"), (10, 0, "per"), (10, 0.5, "per"), (10, 1.5, "per")],
)
def test_rate_limit_validation(rate: int, per: float, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RateLimit(rate, per)


def test_method_is_normalised() -> None:
    assert RateLimit(1, 1, "get").method == "GET"


# --- behaviour on a fake clock -------------------------------------------------------


def test_no_limits_gives_a_no_op_limiter() -> None:
    limiter = build_limiter([], key="acme")
    assert isinstance(limiter, NoLimiter)
    run(limiter.acquire("POST", "/x"))


def test_no_startup_burst_and_exactly_rate_per_window(fake: FakeTime) -> None:
    limiter = build_limiter([RateLimit(5, 1)], key="acme", sleep=fake.sleep)
    start = fake.now

    async def go() -> list[float]:
        stamps = []
        for _ in range(12):
            await limiter.acquire("POST", "/api/v1/contact")
            stamps.append(fake.now - start)
        return stamps

    stamps = run(go())
    # 5 at once, then 5 more exactly when the first ones leave the window, and so on.
    assert stamps == [0.0] * 5 + [1.0] * 5 + [2.0] * 2


def test_a_thousand_acquisitions_16_tasks_never_exceed_200_in_any_second(
    fake: FakeTime,
) -> None:
    limiter = build_limiter([ALL], key="acme", sleep=fake.sleep)
    start = fake.now
    stamps = run(acquire_all(limiter, 1000, tasks=16, clock=fake.time))
    assert isinstance(stamps, list)
    times = [t for t, _, _ in stamps]
    assert len(times) == 1000
    assert most_in_any_window(times, 1.0) == 200
    assert max(times) - start >= 4.0  # 1,000 at 200/s need five windows


def test_a_request_counts_against_every_limit_it_matches(fake: FakeTime) -> None:
    limits = [RateLimit(10, 1), RateLimit(3, 1, "GET", "/api/v1/contacts")]
    limiter = build_limiter(limits, key="acme", sleep=fake.sleep)

    def request(n: int) -> tuple[str, str]:
        return ("GET", f"/api/v1/contacts?n={n}") if n % 2 else ("POST", "/api/v1/contact")

    stamps = run(acquire_all(limiter, 60, tasks=8, clock=fake.time, request=request))
    assert isinstance(stamps, list)
    searches = [t for t, method, _ in stamps if method == "GET"]
    assert len(searches) == 30
    assert most_in_any_window(searches, 1.0) == 3
    assert most_in_any_window([t for t, _, _ in stamps], 1.0) <= 10


def test_requests_matching_no_limit_pass_and_are_not_counted(fake: FakeTime) -> None:
    limiter = build_limiter([SEARCH], key="acme", sleep=fake.sleep)

    async def go() -> None:
        for _ in range(500):
            await limiter.acquire("POST", "/api/v1/contact")
        for _ in range(50):
            await limiter.acquire("GET", "/api/v1/contacts")

    run(go())
    assert fake.sleeps == []


def test_a_waiting_search_does_not_hold_up_writes(fake: FakeTime) -> None:
    limiter = build_limiter([SEARCH, ALL], key="acme", sleep=fake.sleep)
    order: list[str] = []

    async def go() -> None:
        for _ in range(50):
            await limiter.acquire("GET", "/api/v1/contacts")

        async def search() -> None:
            await limiter.acquire("GET", "/api/v1/contacts")  # must wait for the window
            order.append("search")

        async def write() -> None:
            await limiter.acquire("POST", "/api/v1/contact")
            order.append("write")

        await asyncio.gather(search(), write())

    run(go())
    assert order == ["write", "search"]


def test_limits_are_per_tenant_key_on_a_shared_storage(fake: FakeTime) -> None:
    storage = MemoryStorage()  # what Redis is to several workers
    limit = [RateLimit(2, 1)]
    acme = WindowLimiter(limit, key="acme", storage=storage, sleep=fake.sleep)
    acme_other_worker = WindowLimiter(limit, key="acme", storage=storage, sleep=fake.sleep)
    globex = WindowLimiter(limit, key="globex", storage=storage, sleep=fake.sleep)

    async def go() -> None:
        await acme.acquire("POST", "/")
        await acme.acquire("POST", "/")
        await globex.acquire("POST", "/")
        await globex.acquire("POST", "/")
        assert fake.sleeps == []  # another tenant's window is its own
        await acme_other_worker.acquire("POST", "/")  # the same tenant's is shared

    run(go())
    assert fake.sleeps == [1.0]


def test_storage_uri_accepts_plain_and_async_schemes() -> None:
    for uri in ("memory://", "async+memory://"):
        limiter = build_limiter([ALL], key="acme", storage_uri=uri)
        assert isinstance(limiter, WindowLimiter)
        run(limiter.acquire("POST", "/"))


# --- on real time: window counts only ----------------------------------------------


def test_real_time_1000_acquisitions_never_exceed_200_in_any_second(
    limiter_admissions: list[float],
) -> None:
    limiter = build_limiter([ALL], key="acme")
    stamps = run(acquire_all(limiter, 1000, tasks=16, clock=time.time))
    assert isinstance(stamps, list)
    assert len(stamps) == 1000
    admitted = limiter_admissions
    assert len(admitted) == 1000
    # The old token bucket let ~400 through in the first second.
    assert most_in_any_window(admitted, 1.0) <= 200
    assert max(admitted) - min(admitted) >= 4.0


@pytest.mark.parametrize(
    ("per_second", "expected"),
    [
        (200.0, (200, 1)),
        (2.5, (5, 2)),
        (0.5, (1, 2)),
        (0.25, (1, 4)),
        (1 / 3, (1, 3)),
        (0.001, (1, 1000)),  # no whole window up to 60 s: one per ceil(1/rate) seconds
        (1.0001, (1, 1)),  # rounded down, never above the asked rate
    ],
)
def test_from_rate_never_exceeds_the_rate(per_second: float, expected: tuple[int, int]) -> None:
    limit = RateLimit.from_rate(per_second, "POST", "/x")
    assert (limit.rate, limit.per) == expected
    assert limit.rate / limit.per <= per_second + 1e-9
    assert (limit.method, limit.path) == ("POST", "/x")


def test_from_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimit.from_rate(0)


# --- on a clock the caller gives (time.time left alone) ------------------------------


class OwnClock:
    """A simulated clock far from the wall clock, moved only by its own ``sleep``."""

    def __init__(self) -> None:
        self.now = 5.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def test_a_limiter_given_a_clock_admits_by_that_clock_not_the_wall_clock() -> None:
    own = OwnClock()
    limiter = build_limiter([RateLimit(5, 1)], key="acme", sleep=own.sleep, clock=own.time)

    async def go() -> list[float]:
        stamps = []
        for _ in range(12):
            await limiter.acquire("POST", "/api/v1/contact")
            stamps.append(own.now - 5.0)
        return stamps

    # Exactly the windows of the library's strategy, in simulated seconds: on the wall
    # clock the sixth request would wait a real second and the simulated one not move.
    assert run(go()) == [0.0] * 5 + [1.0] * 5 + [2.0] * 2
    assert own.sleeps == [1.0, 1.0]


def test_a_simulated_clock_moved_on_by_the_test_opens_the_window() -> None:
    own = OwnClock()
    limiter = build_limiter([RateLimit(2, 1)], key="acme", sleep=own.sleep, clock=own.time)

    async def go() -> None:
        await limiter.acquire("POST", "/")
        await limiter.acquire("POST", "/")
        own.now += 1.5  # time passes outside the limiter
        await limiter.acquire("POST", "/")

    run(go())
    assert own.sleeps == []


def test_a_shared_storage_refuses_a_clock_of_its_own() -> None:
    own = OwnClock()
    with pytest.raises(ValueError, match="library's clock"):
        build_limiter([ALL], key="acme", storage_uri="redis://localhost:1", clock=own.time)


def test_a_client_given_sleep_and_clock_waits_rate_limits_in_simulated_time() -> None:
    from contactsync_gleantap import (  # noqa: PLC0415 - one test needs a provider
        DEMO_API_KEY,
        DEMO_APP_ID,
        DEMO_SECRET_KEY,
        GleantapEmulator,
    )

    from contactsync import Client  # noqa: PLC0415
    from contactsync.testing import EmulatorApp  # noqa: PLC0415

    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    config = {
        "tenants": {
            "g": {
                "provider": "gleantap",
                "credentials": {"api_key": DEMO_API_KEY, "secret_key": DEMO_SECRET_KEY},
                "options": {"app_id": DEMO_APP_ID},
                "http": {"requests_per_second": 1, "concurrency": 1},
            }
        }
    }
    emulator = GleantapEmulator()
    people = [
        {"external_id": f"p{n}", "first_name": "A", "last_name": "B", "email": f"p{n}@example.com"}
        for n in range(4)
    ]
    with Client(
        config, "g", emulator=EmulatorApp(emulator), sleep=sleep, clock=lambda: now[0]
    ) as client:
        outcomes = list(client.upsert_many(people))
    assert len(outcomes) == 4
    # One request a second: the three after the first waited three simulated seconds.
    assert sum(slept) >= 3.0
    assert now[0] - 100.0 >= 3.0
    assert len(emulator.contacts()) == 4
