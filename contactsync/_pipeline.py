"""The engine's pure parts: input → prepared batches, and flow results → outcomes.

Nothing here does I/O, so the sync engine, the async engine and the planner
share it and differ only in how they send requests and wait.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ._config import Tenant
from ._errors import ContactError, RequestFailed, UnsupportedFeature
from ._model import Contact
from ._outcome import Outcome, OutcomeError, Status
from ._provider import MappingContext, Prepared, Provider, Request, Response, Sleep, Step
from ._records import InputLine, contact_from_record

log = logging.getLogger("contactsync")

ContactInput = Contact | Mapping[str, Any] | InputLine
Batch = list[Prepared[Any]]


def rejected(
    index: int, error: OutcomeError, source: object, external_id: str | None = None
) -> Outcome:
    return Outcome(index, Status.REJECTED, external_id=external_id, error=error, input=source)


def _external_id_of(record: object) -> str | None:
    if isinstance(record, Mapping):
        value = record.get("external_id")
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def input_index(item: ContactInput, position: int) -> int:
    """An input line keeps its line's index (blank lines skipped); anything else its position."""
    return item.index if isinstance(item, InputLine) else position


class Pipeline:
    """Stages one tenant's input through its provider's mapping and batching."""

    def __init__(self, tenant: Tenant, provider: Provider[Any]) -> None:
        self.tenant = tenant
        self.provider = provider
        self.max_batch = max(1, min(provider.batch_size(), provider.capabilities.max_batch_size))

    def prepare(self, index: int, item: ContactInput) -> Prepared[Any] | Outcome:
        source: object = item
        try:
            if isinstance(item, InputLine):
                source = item.record
                if item.error is not None:
                    raise item.error
                item = item.record  # type: ignore[assignment]
            contact = item if isinstance(item, Contact) else contact_from_record(item)
            source = contact
            contact = contact.with_phone_region(self.tenant.default_phone_region)
            ctx = MappingContext(self.provider.name, self.tenant)
            payload = self.provider.prepare(contact, ctx)
        except ContactError as exc:
            error = OutcomeError("invalid_contact", str(exc), field=exc.field)
            ext = source.external_id if isinstance(source, Contact) else _external_id_of(source)
            return rejected(index, error, source, ext)
        except UnsupportedFeature as exc:
            assert isinstance(source, Contact)
            error = OutcomeError("unsupported_feature", str(exc))
            return rejected(index, error, source, source.external_id)
        return Prepared(index, contact, payload, tuple(ctx.warnings))

    def stage(self, inputs: Iterable[ContactInput]) -> Iterator[Prepared[Any] | Outcome]:
        for position, item in enumerate(inputs):
            yield self.prepare(input_index(item, position), item)

    def batcher(self) -> Batcher:
        return Batcher(self.provider, self.max_batch)

    def batches(self, staged: Iterable[Prepared[Any] | Outcome]) -> Iterator[Batch | Outcome]:
        batcher = self.batcher()
        for item in staged:
            yield from batcher.add(item)
        yield from batcher.flush()

    def finish(self, batch: Batch, results: Sequence[Outcome], requests: int) -> list[Outcome]:
        """Exactly one outcome per item of ``batch``, completed with what the engine knows."""
        expected = {item.index for item in batch}
        by_index: dict[int, Outcome] = {}
        for outcome in results:
            if outcome.index not in expected or outcome.index in by_index:
                log.warning(
                    "%s returned an unexpected outcome for input %d; ignored",
                    self.provider.name,
                    outcome.index,
                )
                continue
            by_index[outcome.index] = outcome
        finished = []
        for item in batch:
            outcome = by_index.get(item.index) or Outcome(
                item.index,
                Status.FAILED,
                error=OutcomeError("provider_error", "the provider reported no outcome"),
            )
            # Built directly, not with attrs.evolve: this runs once per contact.
            finished.append(
                Outcome(
                    outcome.index,
                    outcome.status,
                    remote_id=outcome.remote_id,
                    external_id=item.contact.external_id,
                    warnings=item.warnings + outcome.warnings,
                    error=outcome.error,
                    requests=requests,
                    input=item.contact,
                )
            )
        return finished


class Batcher:
    """Fills one open batch per batch key; hands each out when full, the rest at the end.

    Memory is bounded by the batch size times the number of distinct keys.
    """

    def __init__(self, provider: Provider[Any], max_batch: int) -> None:
        self._provider = provider
        self._max = max_batch
        self._open: dict[Hashable, Batch] = {}

    def add(self, item: Prepared[Any] | Outcome) -> list[Batch | Outcome]:
        if isinstance(item, Outcome):
            return [item]
        if self._max == 1:
            return [[item]]
        key = self._provider.batch_key(item)
        batch = self._open.setdefault(key, [])
        batch.append(item)
        if len(batch) < self._max:
            return []
        del self._open[key]
        return [batch]

    def flush(self) -> list[Batch]:
        batches = list(self._open.values())
        self._open.clear()
        return batches


def failed_batch(batch: Batch, error: OutcomeError) -> list[Outcome]:
    return [Outcome(item.index, Status.FAILED, error=error) for item in batch]


@attrs.frozen
class Done:
    outcomes: Sequence[Outcome]
    error: OutcomeError | None = None
    """Set when the flow ended by an error rather than by returning."""


class FlowStepper:
    """Advances one provider flow; turns provider bugs into failed outcomes, never a crash.

    Without ``flow`` it runs the provider's upsert flow for ``batch``; with it, that
    flow (e.g. ``setup``), whose return value is ignored.
    """

    def __init__(self, provider: Provider[Any], batch: Batch, flow: Any = None) -> None:
        self._provider = provider
        self._batch = batch
        self._flow = flow
        self._start_error: Done | None = None
        if flow is None:
            try:
                self._flow = provider.upsert(batch)
            except UnsupportedFeature as exc:
                self._start_error = self._failed(OutcomeError("unsupported_feature", str(exc)))

    def _failed(self, error: OutcomeError) -> Done:
        return Done(failed_batch(self._batch, error), error)

    def start(self) -> Step | Done:
        if self._start_error is not None:
            return self._start_error
        return self._advance(next)

    def send(self, response: Response | None) -> Step | Done:
        return self._advance(lambda flow: flow.send(response))

    def throw(self, error: RequestFailed) -> Step | Done:
        return self._advance(lambda flow: flow.throw(error))

    def _advance(self, move: Any) -> Step | Done:
        assert self._flow is not None
        try:
            step = move(self._flow)
        except StopIteration as stop:
            value = stop.value if self._batch else None
            return Done(value or ())
        except RequestFailed as exc:
            return self._failed(
                OutcomeError(
                    "request_failed", str(exc), status_code=exc.status_code, retryable=exc.retryable
                )
            )
        except Exception as exc:
            log.exception("%s flow raised", self._provider.name)
            return self._failed(OutcomeError("provider_error", f"{type(exc).__name__}: {exc}"))
        if not isinstance(step, Request | Sleep):
            self._flow.close()
            return self._failed(
                OutcomeError("provider_error", f"flow yielded {type(step).__name__}")
            )
        return step
