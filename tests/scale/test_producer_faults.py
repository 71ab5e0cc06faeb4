"""The producer against a broker and result backend that fail at any call: every
input row ends with exactly one outcome, whichever call raised and whatever the
producer was doing at that moment.

No Redis and no timing: an in-memory broker, result backend and worker (a chunk's
result is ready the second time it is asked for) count every call the producer makes
to them, and each scenario is run with the fault (or the interrupt) placed at each of
those calls in turn. The producer's retry budget runs on a test clock.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Callable
from typing import Any, cast

import pytest
import redis
import redis.exceptions
from celery import states

from contactsync import Outcome, Status, load_config
from contactsync.celery import _producer
from contactsync.celery._outage import OutageGuard
from contactsync.celery._producer import DistributedRun, upsert_distributed

ROWS = [
    {"external_id": f"f{n}", "email": f"f{n}@example.com", "first_name": f"R{n}"} for n in range(10)
]
CONFIG = load_config(
    {
        "scale": {"broker": "redis://127.0.0.1:1/0", "shards": 3, "chunk_size": 2},
        "state": {"url": "postgresql://u:p@127.0.0.1:1/db"},
        "tenants": {
            "shop": {
                "provider": "yespo",
                "base_url": "http://127.0.0.1:1",
                "credentials": {"api_key": "key-12345"},
            }
        },
    }
)
FAILING_CHUNK = 1
"""The worker's task for this chunk raises (its rows come out ``outcome_unknown``)."""


def _refused() -> BaseException:
    return redis.exceptions.ConnectionError("Connection refused")


def _consumer_gave_up() -> BaseException:
    # What Celery's Redis result consumer raises when it cannot resubscribe.
    try:
        raise _refused()
    except redis.exceptions.ConnectionError as exc:
        try:
            raise RuntimeError("Retry limit exceeded") from exc
        except RuntimeError as outer:
            return outer


KINDS = {"refused": _refused, "consumer_gave_up": _consumer_gave_up}


class _Redis:
    """Broker, result backend and worker in one. Call number ``fail_from`` and every
    later call (only that one with ``once``) raises ``kind()``; ``empty`` makes that
    fault a restart that lost every queued task, result and key (with no ``kind``, a
    restart so quick that the call succeeds on the emptied Redis)."""

    def __init__(
        self,
        *,
        fail_from: int | None = None,
        once: bool = False,
        empty: bool = False,
        kind: Callable[[], BaseException] | None = _refused,
    ) -> None:
        self.fail_from = fail_from
        self.once = once
        self.empty = empty
        self.kind = kind
        self.on_call: Callable[[int], None] = lambda _: None
        self.calls: list[str] = []
        self.queued: dict[str, list[tuple[int, Any]]] = {}
        self.asked: Counter[str] = Counter()
        self.results: dict[str, dict[str, Any]] = {}
        self.tried: set[str] = set()
        """Task ids the producer tried to send (it may have been queued)."""
        self.read: set[str] = set()
        """Task ids whose ready result the backend handed to the producer."""
        self.revoked: set[str] = set()
        self.keys: dict[str, bytes] = {}

    def call(self, site: str) -> None:
        number = len(self.calls)
        # Far more than any run takes: a producer waiting for chunks nobody will run.
        assert number < 10_000, f"the producer is stuck waiting; calls: {Counter(self.calls)}"
        self.calls.append(site)
        self.on_call(number)
        if self.fail_from is None:
            return
        if number == self.fail_from if self.once else number >= self.fail_from:
            if self.empty:
                self.queued.clear()
                self.asked.clear()
                self.results.clear()
                self.keys.clear()
            if self.kind is not None:
                raise self.kind()

    def meta(self, task_id: str) -> dict[str, Any]:
        if task_id not in self.results and task_id in self.queued:
            self.asked[task_id] += 1
            if self.asked[task_id] >= 2:  # the worker ran it
                self.results[task_id] = _run_chunk(task_id, self.queued[task_id])
        meta = self.results.get(task_id, {"status": states.PENDING, "result": None})
        if meta["status"] in states.READY_STATES:
            self.read.add(task_id)
        return meta


def _chunk_number(task_id: str) -> int:
    return int(task_id.rsplit("-", 1)[1])


def _run_chunk(task_id: str, rows: list[tuple[int, Any]]) -> dict[str, Any]:
    if _chunk_number(task_id) == FAILING_CHUNK:
        return {"status": states.FAILURE, "result": RuntimeError("boom")}
    outcomes = [
        {
            "index": index,
            "status": "created",
            "remote_id": f"r{index}",
            "external_id": record["external_id"],
            "requests": 1,
        }
        for index, record in rows
    ]
    return {"status": states.SUCCESS, "result": {"outcomes": outcomes, "requests": len(rows)}}


class _Client(redis.Redis):
    """The Redis client of a Redis result backend (never connected: its two commands
    the producer uses go to the in-memory Redis)."""

    def __init__(self, redis_: _Redis) -> None:
        super().__init__()
        self.fake = redis_

    def set(  # type: ignore[override]
        self, name: str, value: bytes, ex: float | None = None, xx: bool = False
    ) -> bool | None:
        self.fake.call("set")
        if xx and name not in self.fake.keys:
            return None
        self.fake.keys[name] = value
        return True

    def delete(self, *names: str) -> int:  # type: ignore[override]
        self.fake.call("delete")
        return sum(self.fake.keys.pop(name, None) is not None for name in names)


class _Backend:
    """What ``AsyncResult`` (and the producer) ask of a Redis result backend."""

    READY_STATES = states.READY_STATES

    def __init__(self, redis_: _Redis) -> None:
        self.redis = redis_
        self.client = _Client(redis_)

    def get_task_meta(self, task_id: str) -> dict[str, Any]:
        self.redis.call("get_task_meta")
        return self.redis.meta(task_id)

    def meta_from_decoded(self, meta: dict[str, Any]) -> dict[str, Any]:
        return meta

    def remove_pending_result(self, result: Any) -> Any:
        return result

    def forget(self, task_id: str) -> None:
        self.redis.call("forget")
        self.redis.results.pop(task_id, None)


class _Control:
    def __init__(self, redis_: _Redis) -> None:
        self.redis = redis_

    def revoke(self, task_id: str) -> None:
        self.redis.call("revoke")
        self.redis.revoked.add(task_id)


class _App:
    def __init__(self, redis_: _Redis) -> None:
        self.redis = redis_
        self.backend = _Backend(redis_)
        self.control = _Control(redis_)

    def send_task(self, name: str, args: tuple[Any, ...], task_id: str) -> None:
        self.redis.tried.add(task_id)
        self.redis.call("send_task")
        self.redis.queued[task_id] = [(index, record) for index, record in args[4]]


CHUNK_OF: dict[int, str] = {}
"""Each row's chunk task id in the latest run, sent or not."""


@pytest.fixture(autouse=True)
def _no_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """No state store here (its URL names no server): the tenant lock the producer
    holds on it is tested in tests/state/test_tenant_lock.py."""
    monkeypatch.setattr(_producer, "_tenant_locked", lambda *a: contextlib.nullcontext())


@pytest.fixture(autouse=True)
def _test_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry budget spent on a clock that only the retries' pauses advance; the
    producer's split of the rows into chunks noted in ``CHUNK_OF``."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    guard = functools.partial(OutageGuard, clock=lambda: now[0], sleep=sleep)
    monkeypatch.setattr(_producer, "OutageGuard", guard)
    split = _producer._queues

    def noted(*args: Any) -> Any:
        queues = split(*args)
        CHUNK_OF.clear()
        CHUNK_OF.update({row.index: c.task_id for q in queues for c in q for row in c.rows})
        return queues

    monkeypatch.setattr(_producer, "_queues", noted)


def _start(redis_: _Redis) -> DistributedRun:
    app = _App(redis_)
    return upsert_distributed(cast(Any, app), CONFIG, "shop", ROWS, poll=0)


def _one_each(outcomes: list[Outcome], where: str) -> dict[int, Outcome]:
    """The outcomes by row, once checked that every row has exactly one."""
    counts = Counter(o.index for o in outcomes)
    missing = sorted(set(range(len(ROWS))) - set(counts))
    twice = sorted(index for index, count in counts.items() if count > 1)
    assert (missing, twice) == ([], []), f"{where}: rows without an outcome, rows with two"
    assert set(counts) == set(range(len(ROWS))), where
    for outcome in outcomes:
        assert outcome.external_id == ROWS[outcome.index]["external_id"], (where, outcome)
        assert outcome.status in (Status.CREATED, Status.FAILED), (where, outcome)
    return {o.index: o for o in outcomes}


def _code(outcome: Outcome) -> str | None:
    return None if outcome.error is None else outcome.error.code


def _calls_of_a_clean_run() -> list[str]:
    redis_ = _Redis()
    by_index = _one_each(list(_start(redis_)), "no fault")
    failed = {i for i, o in by_index.items() if o.status is Status.FAILED}
    assert failed == {i for i, task_id in CHUNK_OF.items() if _is_failing(task_id)}
    assert len(set(CHUNK_OF.values())) == 6  # three shards of two chunks
    return redis_.calls


def _is_failing(task_id: str) -> bool:
    return _chunk_number(task_id) == FAILING_CHUNK


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_redis_gone_for_good_at_any_call_leaves_one_outcome_per_row(kind: str) -> None:
    """Redis goes away at call number ``k`` and never comes back, for every ``k`` of a
    run: a result read before is kept, rows of chunks sent and not read are
    ``outcome_unknown``, of chunks never sent ``not_sent``."""
    calls = len(_calls_of_a_clean_run())
    for fail_from in range(calls + 1):
        where = f"{kind} from call {fail_from}"
        redis_ = _Redis(fail_from=fail_from, kind=KINDS[kind])
        run = _start(redis_)
        by_index = _one_each(list(run), where)
        for index, outcome in by_index.items():
            task_id = CHUNK_OF[index]
            if task_id in redis_.read and not _is_failing(task_id):
                # The worker's answer reached the producer: it is what the row gets.
                assert outcome.status is Status.CREATED, (where, outcome)
            elif task_id in redis_.read:
                assert _code(outcome) == "outcome_unknown", (where, outcome)
                assert outcome.error is not None
                assert "RuntimeError" in outcome.error.message, (where, outcome)
            elif task_id in redis_.tried:
                assert _code(outcome) == "outcome_unknown", (where, outcome)
                assert outcome.error is not None
                assert "may apply" in outcome.error.message, (where, outcome)
            else:
                assert _code(outcome) == "not_sent", (where, outcome)
        assert run.summary.total == len(ROWS), where


def test_a_chunk_read_just_before_redis_is_lost_keeps_its_outcomes() -> None:
    """What was seen in a full run: a shard's chunk reported, Redis gone for good when
    the shard's next chunk was sent; the reported chunk's rows were left with none."""
    calls = _calls_of_a_clean_run()
    sends = [number for number, site in enumerate(calls) if site == "send_task"]
    fail_from = sends[3]  # the first send after the three shards' heads
    redis_ = _Redis(fail_from=fail_from)
    by_index = _one_each(list(_start(redis_)), "gone at the send of a next chunk")
    read = [task_id for task_id in redis_.read if not _is_failing(task_id)]
    assert len(read) == 1
    assert all(by_index[i].status is Status.CREATED for i, t in CHUNK_OF.items() if t in read)
    codes = Counter(_code(o) for o in by_index.values())
    assert codes["outcome_unknown"] > 0
    assert codes["not_sent"] > 0


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("empty", [False, True], ids=["kept", "restarted_empty"])
def test_a_short_outage_at_any_call_is_ridden_out(kind: str, empty: bool) -> None:
    """One call fails (Redis restarting, maybe back empty), for every call of a run:
    the run ends as if nothing had happened."""
    calls = len(_calls_of_a_clean_run())
    for fail_at in range(calls):
        where = f"{kind} once at call {fail_at}, empty={empty}"
        redis_ = _Redis(fail_from=fail_at, once=True, empty=empty, kind=KINDS[kind])
        by_index = _one_each(list(_start(redis_)), where)
        for index, outcome in by_index.items():
            expected = Status.FAILED if _is_failing(CHUNK_OF[index]) else Status.CREATED
            assert outcome.status is expected, (where, outcome)


def test_a_restart_no_call_saw_at_any_call_is_noticed() -> None:
    """Redis restarted empty between two calls, so quickly that no call failed, at
    every call of a run: the producer notices (its key in Redis is gone), sends the
    chunks it waits for again, and the run ends as if nothing had happened."""
    calls = len(_calls_of_a_clean_run())
    for emptied_at in range(calls):
        where = f"emptied silently at call {emptied_at}"
        redis_ = _Redis(fail_from=emptied_at, once=True, empty=True, kind=None)
        by_index = _one_each(list(_start(redis_)), where)
        for index, outcome in by_index.items():
            expected = Status.FAILED if _is_failing(CHUNK_OF[index]) else Status.CREATED
            assert outcome.status is expected, (where, outcome)
        assert not redis_.keys, where  # the producer's key is gone with it


@pytest.mark.parametrize("gone", [False, True], ids=["redis_up", "redis_gone"])
def test_an_interrupt_at_any_call_leaves_one_outcome_per_row(gone: bool) -> None:
    """Ctrl-C (``cancel``) at call number ``k``, with Redis up or gone from then on:
    rows read keep their outcome, the others are failed, none is missed or doubled;
    with Redis up, every chunk sent and not read is revoked."""
    calls = len(_calls_of_a_clean_run())
    for stop_at in range(calls):
        where = f"stop at call {stop_at}, gone={gone}"
        redis_ = _Redis(fail_from=stop_at if gone else None)
        run = _start(redis_)

        def interrupt(number: int, run: DistributedRun = run, stop_at: int = stop_at) -> None:
            if number == stop_at:
                run.cancel()

        redis_.on_call = interrupt
        by_index = _one_each(list(run), where)
        for index, outcome in by_index.items():
            task_id = CHUNK_OF[index]
            if task_id in redis_.read and not _is_failing(task_id):
                assert outcome.status is Status.CREATED, (where, outcome)
            else:
                assert _code(outcome) in {"outcome_unknown", "not_sent"}, (where, outcome)
        if not gone:
            assert redis_.revoked == redis_.tried - redis_.read, where
