"""The producer's side of a Redis outage, without Redis: broker calls are retried
within their budget, then given up on; every row not reported then gets one outcome
that says whether its chunk was queued."""

from __future__ import annotations

import pytest
import redis.exceptions

from contactsync import Status, Summary
from contactsync._scale._shard import Row
from contactsync.celery._outage import BrokerLost, OutageGuard, RestartProbe
from contactsync.celery._producer import _Chunk, _lost


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _flaky(failures: int, message: str = "Connection refused") -> object:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise redis.exceptions.ConnectionError(message)
        return "done"

    return action


def test_an_outage_shorter_than_the_budget_is_ridden_out_and_counted() -> None:
    clock = _Clock()
    guard = OutageGuard(5.0, pause=0.5, clock=clock, sleep=clock.sleep)
    assert guard.call(_flaky(3)) == "done"  # type: ignore[arg-type]
    assert guard.outages == 1
    assert guard.call(lambda: "again") == "again"
    assert guard.outages == 1  # a call that never failed is no outage


def test_an_outage_longer_than_the_budget_gives_up_without_the_message() -> None:
    clock = _Clock()
    guard = OutageGuard(2.0, pause=0.5, clock=clock, sleep=clock.sleep)
    secret = "redis://:Hunter2-pw  @127.0.0.1:1/0"
    with pytest.raises(BrokerLost) as raised:
        guard.call(_flaky(100, f"Error connecting to {secret}"))  # type: ignore[arg-type]
    assert "Hunter2" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    assert clock.now >= 2.0


def test_an_error_raised_while_handling_a_connection_error_is_an_outage() -> None:
    clock = _Clock()
    guard = OutageGuard(5.0, pause=0.5, clock=clock, sleep=clock.sleep)
    calls: list[int] = []

    def gave_up_reconnecting() -> str:
        calls.append(1)
        if len(calls) == 1:
            try:
                raise redis.exceptions.ConnectionError("refused")
            except redis.exceptions.ConnectionError:
                raise RuntimeError("Retry limit exceeded") from None
        return "done"

    assert guard.call(gave_up_reconnecting) == "done"
    assert guard.outages == 1


def test_a_stop_during_an_outage_gives_up_at_once() -> None:
    clock = _Clock()
    stops: list[bool] = []

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        stops.append(True)  # interrupted during the first pause

    guard = OutageGuard(60.0, pause=0.5, clock=clock, sleep=sleep, stopped=lambda: bool(stops))
    with pytest.raises(BrokerLost, match="stopped"):
        guard.call(_flaky(100))  # type: ignore[arg-type]
    assert clock.now == 0.5


def test_other_errors_are_not_retried() -> None:
    guard = OutageGuard(5.0, sleep=lambda _: pytest.fail("slept"))

    def broken() -> None:
        raise ValueError("not an outage")

    with pytest.raises(ValueError, match="not an outage"):
        guard.call(broken)


def _chunk(number: int, *indexes: int) -> _Chunk:
    rows = [Row(i, {"external_id": f"x{i}", "email": f"x{i}@example.com"}) for i in indexes]
    return _Chunk(f"run-{number}", 0, number, rows)


def test_rows_of_queued_chunks_are_unknown_and_of_the_others_not_sent() -> None:
    chunks = [_chunk(0, 1, 2), _chunk(2, 5), _chunk(1, 3)]
    summary = Summary()
    for outcome in _lost(chunks, set(), {"run-0", "run-1"}, {}, "gone"):
        summary.add(outcome)
        assert outcome.status is Status.FAILED
        assert outcome.error is not None
        assert outcome.error.retryable
        assert outcome.external_id == f"x{outcome.index}"
        assert outcome.error.code == {5: "not_sent"}.get(outcome.index, "outcome_unknown")
    assert summary.failed == 4


def test_rows_already_reported_get_no_second_outcome() -> None:
    # Chunk 0 was read (row 1 reported) and chunk 1 sent when the broker was lost: what
    # is left is derived from every chunk and the rows reported, never from the queues.
    chunks = [_chunk(0, 1), _chunk(1, 3, 4), _chunk(2, 5)]
    outcomes = list(_lost(chunks, {1, 4}, {"run-0", "run-1"}, {}, "gone"))
    codes = {o.index: o.error.code for o in outcomes if o.error}
    assert codes == {3: "outcome_unknown", 5: "not_sent"}


class _RefusingClient:
    """A Redis that answers every write with an error (an ACL, a read-only replica)."""

    def __init__(self) -> None:
        self.calls = 0

    def set(self, *args: object, **kwargs: object) -> None:
        self.calls += 1
        raise redis.exceptions.NoPermissionError("NOPERM no permissions to run 'set'")

    def delete(self, *names: str) -> None:
        pytest.fail("deleted with the probe off")


def test_a_restart_probe_refused_by_redis_turns_itself_off() -> None:
    client = _RefusingClient()
    probe = RestartProbe(client, "contactsync:producer:run")
    probe.start()
    assert not probe.emptied()
    probe.stop()
    assert client.calls == 1


def test_only_a_redis_result_backend_gets_a_restart_probe() -> None:
    class Backend:
        def __init__(self, client: object) -> None:
            self.client = client

    assert RestartProbe.of(Backend(redis.Redis()), "k") is not None
    assert RestartProbe.of(Backend(object()), "k") is None  # e.g. memcached's client
    assert RestartProbe.of(object(), "k") is None
