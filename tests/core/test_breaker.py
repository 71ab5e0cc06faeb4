"""Breaker: opens only after ``open_after`` seconds of nothing but transport errors."""

from __future__ import annotations

import pytest

from contactsync._retry import Breaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_closed_at_start_and_after_successes() -> None:
    clock = FakeClock()
    breaker = Breaker(60.0, clock)
    assert not breaker.is_open
    breaker.record_success()
    clock.now += 1000
    assert not breaker.is_open  # time without any failure does not open it


def test_opens_after_open_after_seconds_of_transport_failures() -> None:
    clock = FakeClock()
    breaker = Breaker(60.0, clock)
    for _ in range(59):
        breaker.record_transport_failure()
        clock.now += 1.0
        assert not breaker.is_open
    clock.now += 1.0
    breaker.record_transport_failure()
    assert breaker.is_open  # 60 s since the first failure, nothing succeeded


def test_counts_from_the_first_failure_not_the_last_success() -> None:
    clock = FakeClock()
    breaker = Breaker(60.0, clock)
    breaker.record_success()
    clock.now += 55.0  # idle, not failing
    breaker.record_transport_failure()
    clock.now += 10.0
    assert not breaker.is_open
    clock.now += 50.0
    assert breaker.is_open


def test_a_success_closes_it_and_restarts_the_count() -> None:
    clock = FakeClock()
    breaker = Breaker(60.0, clock)
    breaker.record_transport_failure()
    clock.now += 61.0
    assert breaker.is_open
    breaker.record_success()
    assert not breaker.is_open
    breaker.record_transport_failure()
    clock.now += 59.0
    assert not breaker.is_open


def test_any_http_response_means_the_platform_is_reachable() -> None:
    clock = FakeClock()
    breaker = Breaker(60.0, clock)
    breaker.record_transport_failure()
    clock.now += 40.0
    breaker.record_response()  # e.g. a 503: not a transport failure
    clock.now += 40.0
    breaker.record_transport_failure()
    assert not breaker.is_open
    clock.now += 60.0
    assert breaker.is_open


def test_open_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Breaker(0.0)
