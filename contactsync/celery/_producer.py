"""The producer: shard a tenant's input, enqueue it as Celery chains, gather one
outcome per input row.

Canvas: one ``chain`` per shard (its chunks run one after another, so rows for one
person keep their order), all chains in one ``group`` (shards run in parallel).
Every chunk task gets its id up front; the producer waits on those ids directly
rather than through a ``chord``: a chord callback would hold all 20,000 outcomes in
one result, and a chain's later results are not reachable from a group's. Only the
first unfinished chunk of each shard is polled, since a shard finishes in order.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from celery import Celery, chain, group
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

    def cancel(self) -> None:
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
) -> DistributedRun:
    """Upsert ``inputs`` for ``tenant`` on the workers of ``app`` (yours or
    :func:`create_app`'s; its workers must have :func:`register` ed the task with the
    same config). ``shards`` and ``chunk_size`` default to the ``[scale]`` table's."""
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
    run_id = uuid.uuid4().hex
    queues: list[deque[tuple[str, list[Row]]]] = []
    chains = []
    number = 0
    for shard_number, shard_rows in enumerate(shard(rows, shards)):
        queue: deque[tuple[str, list[Row]]] = deque()
        signatures = []
        for chunk_rows in chunks(shard_rows, chunk_size):
            task_id = f"{run_id}-{number}"
            args = (
                run_id,
                tenant,
                shard_number,
                number,
                [(r.index, r.record) for r in chunk_rows],
                full,
            )
            signatures.append(
                app.signature(TASK_NAME, args=args, immutable=True).set(task_id=task_id)
            )
            queue.append((task_id, chunk_rows))
            number += 1
        queues.append(queue)
        chains.append(chain(*signatures))
    if chains:
        group(chains).apply_async()
    while any(queues):
        progressed = False
        for queue in queues:
            while queue and not stopped:
                task_id, chunk_rows = queue[0]
                result = AsyncResult(task_id, app=app)
                if not result.ready():
                    break
                queue.popleft()
                progressed = True
                for outcome in _chunk_outcomes(result, chunk_rows, sources, summary):
                    summary.add(outcome)
                    yield outcome
        if stopped:
            yield from _abandoned(app, queues, sources, summary)
            return
        if not progressed:
            time.sleep(poll)


def _chunk_outcomes(
    result: AsyncResult,
    rows: list[Row],
    sources: Mapping[int, object],
    summary: Summary,
) -> Iterator[Outcome]:
    """Exactly one outcome per row of the chunk, whatever the task returned."""
    value = result.result if result.successful() else None
    result.forget()
    seen: set[int] = set()
    wanted = {row.index for row in rows}
    if isinstance(value, Mapping):
        summary.requests += int(value.get("requests") or 0)
        for data in value.get("outcomes") or ():
            index = int(data["index"])
            if index in wanted and index not in seen:
                seen.add(index)
                yield outcome_from_wire(data, sources.get(index))
    problem = (
        "the worker returned no outcome for it"
        if isinstance(value, Mapping)
        else f"its chunk task failed: {type(result.result).__name__}"
    )
    for row in rows:
        if row.index not in seen:
            error = OutcomeError(ErrorCode.PROVIDER_ERROR, problem)
            yield Outcome(row.index, Status.FAILED, error=error, input=sources.get(row.index))


def _abandoned(
    app: Celery,
    queues: list[deque[tuple[str, list[Row]]]],
    sources: Mapping[int, object],
    summary: Summary,
) -> Iterator[Outcome]:
    error = OutcomeError(
        ErrorCode.OUTCOME_UNKNOWN,
        "the run stopped waiting: a worker may still apply it",
        retryable=True,
    )
    for queue in queues:
        for task_id, rows in queue:
            app.control.revoke(task_id)
            for row in rows:
                outcome = Outcome(
                    row.index, Status.FAILED, error=error, input=sources.get(row.index)
                )
                summary.add(outcome)
                yield outcome
        queue.clear()
