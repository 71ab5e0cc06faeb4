"""The producer: shard a tenant's input, enqueue it as Celery tasks, gather one
outcome per input row.

No canvas: the producer sends a shard's first chunk, and each next chunk only
once the previous one has reported, so a shard's chunks run in order and rows for one
person keep theirs; shards run in parallel. A ``chain`` would do the same until a
chunk is redelivered: every copy of a link that completes sends the next link again.
The producer waits on each chunk's task id (set up front) rather than a ``chord``,
whose callback would hold every outcome of the run in one result.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from typing import Any

import attrs
from celery import Celery
from celery.result import AsyncResult

from .._client import ConfigSource
from .._config import Config, load_config
from .._model import Contact
from .._outcome import ErrorCode, Outcome, OutcomeError, Status, Summary
from .._pipeline import ContactInput, Pipeline, input_index
from .._records import InputLine, contact_to_record
from .._registry import Registry, default_registry
from .._scale._shard import Row, chunks, shard
from .._scale._wire import outcome_from_wire
from .._scale._worker import check_distributed_state
from ._app import TASK_NAME
from ._outage import BrokerLost, OutageGuard, RestartProbe


class DistributedRun(Iterator[Outcome]):
    """Outcomes of :func:`upsert_distributed` as chunks finish (each with its input
    ``index``); ``summary`` holds the running totals. Nothing is enqueued until it is
    iterated."""

    def __init__(self, outcomes: Iterator[Outcome], summary: Summary, stop: Callable[[], None]):
        self._outcomes = outcomes
        self.summary = summary
        self._stop = stop

    def __next__(self) -> Outcome:
        return next(self._outcomes)

    def rest(self) -> Iterator[Any]:
        """Nothing: a distributed run takes its whole input before it sends."""
        return iter(())

    def cancel(self, force: bool = False) -> None:
        """Stop waiting (safe from a signal handler). Chunks not started are revoked;
        rows whose chunk had not reported come out ``failed`` with code
        ``outcome_unknown``: a worker may still have applied them."""
        self._stop()

    def drain(self) -> Summary:
        for _ in self._outcomes:
            pass
        return self.summary


def upsert_distributed(
    app: Celery,
    config: ConfigSource,
    tenant: str,
    inputs: Iterable[ContactInput],
    *,
    full: bool = False,
    shards: int | None = None,
    chunk_size: int | None = None,
    poll: float = 0.05,
    registry: Registry | None = None,
    lock_wait: float | None = 0.0,
) -> DistributedRun:
    """Upsert ``inputs`` for ``tenant`` on the workers of ``app`` (yours or
    :func:`create_app`'s; its workers must have :func:`register` ed the task with the
    same config). ``shards`` and ``chunk_size`` default to the ``[scale]`` table's.

    The run holds the tenant's lock on the shared state store (its workers do not take
    it): the first step raises :class:`TenantLocked` while another run holds it, after
    waiting ``lock_wait`` seconds (``None``: as long as it takes)."""
    loaded = config if isinstance(config, Config) else load_config(config)
    check_distributed_state(loaded)
    assert loaded.scale is not None
    summary = Summary()
    stopped: list[bool] = []
    outcomes = _run(
        app,
        loaded,
        tenant,
        inputs,
        full=full,
        shards=shards or loaded.scale.shards,
        chunk_size=chunk_size or loaded.scale.chunk_size,
        poll=poll,
        registry=registry or default_registry,
        summary=summary,
        stopped=stopped,
        lock_wait=lock_wait,
    )
    return DistributedRun(outcomes, summary, lambda: stopped.append(True))


def _record(item: ContactInput) -> Any:
    if isinstance(item, InputLine):
        return item.record
    if isinstance(item, Contact):
        return contact_to_record(item)
    return dict(item)


def _source(item: ContactInput) -> object:
    return item.record if isinstance(item, InputLine) else item


def _run(
    app: Celery,
    config: Config,
    tenant: str,
    inputs: Iterable[ContactInput],
    *,
    full: bool,
    shards: int,
    chunk_size: int,
    poll: float,
    registry: Registry,
    summary: Summary,
    stopped: list[bool],
    lock_wait: float | None = 0.0,
) -> Iterator[Outcome]:
    run_id = uuid.uuid4().hex
    with _tenant_locked(config, tenant, run_id, lock_wait):
        yield from _produce(
            app,
            config,
            tenant,
            inputs,
            run_id=run_id,
            full=full,
            shards=shards,
            chunk_size=chunk_size,
            poll=poll,
            registry=registry,
            summary=summary,
            stopped=stopped,
        )


@contextlib.contextmanager
def _tenant_locked(
    config: Config, tenant: str, run_id: str, lock_wait: float | None
) -> Iterator[None]:
    """Hold the tenant lock on the shared store for the whole distributed run: one
    lock, the producer's; its chunks run at once on many workers, which take none."""
    from .._state import open_store  # noqa: PLC0415 - SQLAlchemy only when a run starts
    from .._state._lock import acquire  # noqa: PLC0415

    with open_store(check_distributed_state(config)) as store:
        lock = store.tenant_lock(tenant)
        acquire(lock, tenant, run_id, lock_wait)
        try:
            yield
        finally:
            lock.release()


def _produce(
    app: Celery,
    config: Config,
    tenant: str,
    inputs: Iterable[ContactInput],
    *,
    run_id: str,
    full: bool,
    shards: int,
    chunk_size: int,
    poll: float,
    registry: Registry,
    summary: Summary,
    stopped: list[bool],
) -> Iterator[Outcome]:
    resolved = config.tenant(tenant, registry)
    provider = registry.get(resolved.provider)(resolved)
    # Prepared here only to learn each row's identity keys (and to reject what can
    # never be sent); the worker prepares the row again, after the provider's setup.
    pipeline = Pipeline(resolved, provider)
    sources: dict[int, object] = {}
    rows: list[Row] = []
    for position, item in enumerate(inputs):
        prepared = pipeline.prepare(input_index(item, position), item)
        if isinstance(prepared, Outcome):
            summary.add(prepared)
            yield prepared
            continue
        sources[prepared.index] = _source(item)
        rows.append(Row(prepared.index, _record(item), prepared.identity))
    queues = _queues(run_id, rows, shards, chunk_size)
    assert config.scale is not None
    guard = OutageGuard(config.scale.visibility_timeout, stopped=lambda: bool(stopped))

    def send(item: _Chunk) -> None:
        rows_ = [(row.index, row.record) for row in item.rows]
        args = (run_id, tenant, item.shard, item.number, rows_, full)
        guard.call(lambda: app.send_task(TASK_NAME, args=args, task_id=item.task_id))

    probe = RestartProbe.of(app.backend, f"contactsync:producer:{run_id}")
    yield from _gather(app, queues, send, guard, probe, sources, summary, stopped, poll)


def _gather(
    app: Celery,
    queues: list[deque[_Chunk]],
    send_task: Callable[[_Chunk], None],
    guard: OutageGuard,
    probe: RestartProbe | None,
    sources: Mapping[int, object],
    summary: Summary,
    stopped: list[bool],
    poll: float,
) -> Iterator[Outcome]:
    """Send each shard's chunks in turn and report their outcomes; if the broker is
    lost or the run stopped, one outcome for each row not reported yet."""
    every_chunk = [item for queue in queues for item in queue]
    sent: set[str] = set()
    # The rows that have their outcome: what the run ends with is derived from this and
    # every chunk, never from the queues, which a broker call may interrupt mid-update.
    reported: set[int] = set()

    def send(item: _Chunk) -> None:
        sent.add(item.task_id)  # from here on it may be queued: its rows are unknown
        send_task(item)

    def report(outcomes: Iterable[Outcome]) -> Iterator[Outcome]:
        for outcome in outcomes:
            if outcome.index in reported:
                continue  # never two outcomes for one row
            reported.add(outcome.index)
            summary.add(outcome)
            yield outcome

    try:
        # Outages seen so far: any later one, even while sending, may have emptied Redis.
        outages = guard.outages
        if probe is not None:
            guard.call(probe.start)
        for queue in queues:
            send(queue[0])
        while any(queues):
            progressed = False
            for queue in queues:
                if not queue or stopped:
                    continue
                result = AsyncResult(queue[0].task_id, app=app)
                if not guard.call(result.ready):
                    continue
                done = queue.popleft()
                progressed = True
                # The outcomes in hand go out before the next broker call, which may
                # be the one that finds Redis gone.
                yield from report(_chunk_outcomes(result, done.rows, sources, summary, guard))
                if queue and not stopped:
                    send(queue[0])  # the shard's next chunk, only now: rows keep their order
            if stopped:
                yield from report(_abandoned(app, every_chunk, reported, sent, sources, guard))
                return
            if probe is not None and guard.call(probe.emptied):
                guard.count_outage()  # restarted (or flushed) between two of our calls
            if guard.outages != outages:
                outages = guard.outages
                # Redis came back, maybe empty: send every waiting head again. A copy of
                # a chunk already done or running finds its result or its shard's lease,
                # and the state store keeps a row sent twice from being written twice.
                for queue in queues:
                    if queue:
                        send(queue[0])
            elif not progressed:
                time.sleep(poll)
        if probe is not None:
            guard.attempt(probe.stop)  # or it expires
    except BrokerLost as lost:
        yield from report(_lost(every_chunk, reported, sent, sources, str(lost)))


def _queues(run_id: str, rows: list[Row], shards: int, chunk_size: int) -> list[deque[_Chunk]]:
    """Each shard's chunks, in input order; task ids are known before anything is sent."""
    queues: list[deque[_Chunk]] = []
    number = 0
    for shard_number, shard_rows in enumerate(shard(rows, shards)):
        queue: deque[_Chunk] = deque()
        for chunk_rows in chunks(shard_rows, chunk_size):
            queue.append(_Chunk(f"{run_id}-{number}", shard_number, number, chunk_rows))
            number += 1
        queues.append(queue)
    return queues


@attrs.frozen
class _Chunk:
    task_id: str
    shard: int
    number: int
    rows: list[Row]


def _chunk_outcomes(
    result: AsyncResult,
    rows: list[Row],
    sources: Mapping[int, object],
    summary: Summary,
    guard: OutageGuard,
) -> Iterator[Outcome]:
    """Exactly one outcome per row of the chunk, whatever the task returned."""
    # Ready results are cached by ``ready()``: only forgetting touches Redis again, and
    # a result not forgotten merely expires.
    value = result.result if result.successful() else None
    why = "" if isinstance(value, Mapping) else _why(result)  # forget() drops the cache
    guard.attempt(result.forget)
    seen: set[int] = set()
    wanted = {row.index for row in rows}
    if isinstance(value, Mapping):
        summary.requests += int(value.get("requests") or 0)
        for data in value.get("outcomes") or ():
            index = int(data["index"])
            if index in wanted and index not in seen:
                seen.add(index)
                yield outcome_from_wire(data, sources.get(index))
    # A task that raised may have sent part of its chunk: the outcome is unknown.
    error = (
        OutcomeError(ErrorCode.PROVIDER_ERROR, "the worker returned no outcome for it")
        if isinstance(value, Mapping)
        else OutcomeError(
            ErrorCode.OUTCOME_UNKNOWN,
            f"its chunk task failed ({why}); it may have been sent",
            retryable=True,
        )
    )
    for row in rows:
        if row.index not in seen:
            yield _failed(row, error, sources)


def _why(result: AsyncResult) -> str:
    """The exception's type, or the task's state when no exception came back (a
    result lost with its Redis)."""
    failure = result.result
    return type(failure).__name__ if isinstance(failure, BaseException) else str(result.state)


def _abandoned(
    app: Celery,
    every_chunk: Iterable[_Chunk],
    reported: Container[int],
    sent: Container[str],
    sources: Mapping[int, object],
    guard: OutageGuard,
) -> Iterator[Outcome]:
    """One outcome for each row not reported when the run stops waiting; chunks sent
    and not reported are revoked."""
    error = OutcomeError(
        ErrorCode.OUTCOME_UNKNOWN,
        "the run stopped waiting: a worker may still apply it",
        retryable=True,
    )
    for item in every_chunk:
        left = [row for row in item.rows if row.index not in reported]
        if left and item.task_id in sent:
            # A broker that is away cannot revoke it.
            with contextlib.suppress(BrokerLost):
                guard.call(functools.partial(app.control.revoke, item.task_id))
        for row in left:
            yield _failed(row, error, sources)


def _lost(
    every_chunk: Iterable[_Chunk],
    reported: Container[int],
    sent: Container[str],
    sources: Mapping[int, object],
    why: str,
) -> Iterator[Outcome]:
    """One outcome for each row not reported when the broker is given up on: unknown
    if its chunk was (maybe) queued, not sent if it never was."""
    unknown = OutcomeError(
        ErrorCode.OUTCOME_UNKNOWN, f"{why}: its chunk was queued and may apply", retryable=True
    )
    unsent = OutcomeError(ErrorCode.NOT_SENT, f"{why}: its chunk was never queued", retryable=True)
    for item in every_chunk:
        error = unknown if item.task_id in sent else unsent
        for row in item.rows:
            if row.index not in reported:
                yield _failed(row, error, sources)


def _failed(row: Row, error: OutcomeError, sources: Mapping[int, object]) -> Outcome:
    record = row.record
    external_id = record.get("external_id") if isinstance(record, Mapping) else None
    return Outcome(
        row.index,
        Status.FAILED,
        external_id=external_id if isinstance(external_id, str) else None,
        error=error,
        input=sources.get(row.index),
    )
