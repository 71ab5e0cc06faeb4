"""RetryPolicy / RetryBudget: the time-budgeted retry rules, on a fake clock."""

from __future__ import annotations

import random

import pytest

from contactsync._provider import Response
from contactsync._retry import Failure, RetryPolicy, retry_after_seconds
from contactsync._tenant import HttpSettings

UNAVAILABLE = Failure("status", status_code=503)
REFUSED = Failure("transport", exception="ConnectError")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


class CeilingRng(random.Random):
    """Always the top of the jitter range: makes backoff deterministic."""

    def uniform(self, a: float, b: float) -> float:
        return b


def run_request(
    settings: HttpSettings,
    *,
    faulty_for: float,
    attempt_takes: float = 0.1,
    seed: int = 0,
    failure: Failure = UNAVAILABLE,
) -> tuple[bool, int, float, list[float]]:
    """Send one request against a platform failing for ``faulty_for`` seconds.

    Returns (succeeded, attempts sent, seconds elapsed, waits).
    """
    clock = FakeClock()
    policy = RetryPolicy(settings, clock=clock, rng=random.Random(seed))
    faults_end = clock.now + faulty_for
    budget = policy.start()
    waits: list[float] = []
    sent = 0
    while True:
        sent += 1
        began = clock.now
        clock.advance(attempt_takes)
        if began >= faults_end:
            return True, sent, clock.now - budget.started, waits
        delay = budget.next_delay(failure)
        if delay is None:
            return False, sent, clock.now - budget.started, waits
        waits.append(delay)
        clock.advance(delay)


def test_defaults_are_a_time_budget_not_a_handful_of_attempts() -> None:
    settings = HttpSettings()
    assert settings.retry_for == 300.0
    assert settings.max_retries is None
    assert settings.attempt_timeout == 60.0
    assert settings.breaker_after == 60.0


@pytest.mark.parametrize("seed", range(40))
def test_a_fault_burst_longer_than_the_old_8_second_budget_is_outlasted(seed: int) -> None:
    ok, sent, elapsed, _ = run_request(HttpSettings(), faulty_for=20.0, seed=seed)
    assert ok
    assert sent > 6  # the old policy stopped after 6 attempts
    assert elapsed >= 20.0


@pytest.mark.parametrize("seed", range(40))
def test_a_60_second_outage_is_outlasted_on_a_fake_clock(seed: int) -> None:
    settings = HttpSettings()
    ok, _, elapsed, waits = run_request(settings, faulty_for=60.0, seed=seed, failure=REFUSED)
    assert ok
    # It came back soon after the outage: at most one backoff ceiling late.
    assert 60.0 <= elapsed <= 60.0 + settings.backoff_max + 0.2
    assert all(0.0 <= w <= settings.backoff_max for w in waits)


def test_budget_exhaustion_gives_up_exactly_when_the_next_wait_would_pass_retry_for() -> None:
    settings = HttpSettings(retry_for=100.0, backoff_base=10.0, backoff_max=10.0)
    clock = FakeClock()
    budget = RetryPolicy(settings, clock=clock, rng=CeilingRng()).start()
    times = []
    while True:
        times.append(clock.now - budget.started)
        delay = budget.next_delay(UNAVAILABLE)
        if delay is None:
            break
        assert delay == 10.0
        clock.advance(delay)
    # Attempts at 0, 10, ..., 90 s; a wait from 90 s would end at the 100 s deadline.
    assert times == [float(t) for t in range(0, 100, 10)]
    assert budget.attempts == 10


@pytest.mark.parametrize("seed", range(25))
def test_waits_and_attempts_never_exceed_the_budget(seed: int) -> None:
    settings = HttpSettings(retry_for=45.0, attempt_timeout=5.0)
    ok, _, elapsed, waits = run_request(settings, faulty_for=10_000.0, attempt_takes=3.0, seed=seed)
    assert not ok
    assert sum(waits) < 45.0
    assert elapsed <= 45.0 + 3.0  # the last attempt started before the deadline


def test_attempt_timeout_first_in_full_then_capped_by_what_is_left() -> None:
    settings = HttpSettings(retry_for=100.0, attempt_timeout=60.0)
    clock = FakeClock()
    budget = RetryPolicy(settings, clock=clock, rng=CeilingRng()).start()
    assert budget.attempt_timeout() == 60.0
    clock.advance(60.0)
    assert budget.next_delay(REFUSED) is not None
    clock.advance(10.0)
    assert budget.attempt_timeout() == pytest.approx(30.0)


def test_first_attempt_gets_full_attempt_timeout_even_with_no_retry_budget() -> None:
    budget = RetryPolicy(HttpSettings(retry_for=0.0, attempt_timeout=60.0)).start()
    assert budget.attempt_timeout() == 60.0
    assert budget.next_delay(UNAVAILABLE) is None


def test_backoff_is_capped_exponential() -> None:
    settings = HttpSettings(backoff_base=0.5, backoff_max=30.0, retry_for=10_000.0)
    clock = FakeClock()
    budget = RetryPolicy(settings, clock=clock, rng=CeilingRng()).start()
    ceilings = [budget.next_delay(UNAVAILABLE) for _ in range(9)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_backoff_has_full_jitter() -> None:
    policy = RetryPolicy(HttpSettings(backoff_base=1.0, backoff_max=100.0), rng=random.Random(7))
    draws = [policy.backoff(5) for _ in range(500)]  # ceiling 16 s
    assert all(0.0 <= d <= 16.0 for d in draws)
    assert min(draws) < 2.0
    assert max(draws) > 14.0


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert RetryPolicy(HttpSettings(), rng=CeilingRng()).backoff(10_000) == 30.0


def test_retry_after_is_honoured_exactly_instead_of_backoff() -> None:
    budget = RetryPolicy(HttpSettings(backoff_max=1.0), clock=FakeClock()).start()
    assert budget.next_delay(Failure("status", status_code=429, retry_after=7.0)) == 7.0
    assert budget.next_delay(Failure("status", status_code=429, retry_after=0.0)) == 0.0


def test_retry_after_is_capped_when_parsed() -> None:
    response = Response(429, headers={"retry-after": "100000"})
    assert retry_after_seconds(response) == 300.0
    failure = Failure.from_response(response)
    assert failure == Failure("status", status_code=429, retry_after=300.0)


def test_retry_after_past_the_budget_gives_up_now() -> None:
    budget = RetryPolicy(HttpSettings(retry_for=60.0), clock=FakeClock()).start()
    assert budget.next_delay(Failure("status", status_code=429, retry_after=120.0)) is None


def test_retry_after_http_date_is_parsed_against_the_given_now() -> None:
    response = Response(503, headers={"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"})
    failure = Failure.from_response(response, now=1445412480.0)  # 07:28:00
    assert failure.retry_after == 30.0


def test_max_retries_is_an_extra_cap() -> None:
    budget = RetryPolicy(HttpSettings(max_retries=2), clock=FakeClock()).start()
    assert budget.next_delay(UNAVAILABLE) is not None
    assert budget.next_delay(UNAVAILABLE) is not None
    assert budget.next_delay(UNAVAILABLE) is None
    assert budget.attempts == 3


def test_max_retries_zero_means_one_attempt() -> None:
    budget = RetryPolicy(HttpSettings(max_retries=0), clock=FakeClock()).start()
    assert budget.next_delay(UNAVAILABLE) is None


def test_a_permanent_failure_is_never_retried() -> None:
    budget = RetryPolicy(HttpSettings(), clock=FakeClock()).start()
    assert budget.next_delay(Failure("transport", exception="ConnectError", permanent=True)) is None
    assert budget.attempts == 1


def test_each_request_gets_its_own_budget() -> None:
    clock = FakeClock()
    policy = RetryPolicy(HttpSettings(retry_for=10.0), clock=clock, rng=CeilingRng())
    first = policy.start()
    clock.advance(9.9)
    assert first.next_delay(UNAVAILABLE) is None
    assert policy.start().next_delay(UNAVAILABLE) == 0.5
