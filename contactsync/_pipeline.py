"""The engine's pure parts: input → prepared contacts, and stepping provider flows.

Nothing here does I/O, so the sync engine, the async engine and the planner
share it and differ only in how they send requests and wait.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from ._errors import ContactError, RequestFailed, UnsupportedFeature
from ._field_types import with_field_types
from ._fields import FieldGuard
from ._logs import TenantLog
from ._model import Contact, field_named_in
from ._outcome import ErrorCode, Outcome, OutcomeError, Status
from ._provider import MappingContext, Prepared, Provider, Recall, Request, Response, Sleep, Step
from ._records import InputLine, contact_from_record
from ._schedule import Batch, Scheduler
from ._tenant import Tenant

ContactInput = Contact | Mapping[str, Any] | InputLine


def _field_of(exc: UnsupportedFeature) -> str | None:
    return exc.field or field_named_in(exc.feature)


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
        self.max_open = 128
        self.log = TenantLog(tenant.name, provider.name, tenant.credentials)
        self.fields = FieldGuard(provider.name, provider.capabilities)

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
            contact = with_field_types(contact, self.tenant.custom_field_types)
            ctx = MappingContext(self.provider.name, self.tenant)
            contact = self.fields.check(contact, ctx)
            try:
                payload = self.provider.prepare(contact, ctx)
            except (ContactError, UnsupportedFeature):
                raise
            except (ValueError, TypeError, OverflowError) as exc:
                # A value the provider could not map: this contact only.
                raise ContactError("contact", f"could not be mapped: {exc}") from None
            except Exception as exc:  # a provider bug: this contact fails, the run goes on
                self.log.exception("could not prepare the contact", indexes=[index])
                error = OutcomeError(ErrorCode.PROVIDER_ERROR, f"{type(exc).__name__}: {exc}")
                return Outcome(index, Status.FAILED, error=error, input=source)
        except ContactError as exc:
            code = getattr(exc, "code", ErrorCode.INVALID_CONTACT)
            error = OutcomeError(code, str(exc), field=exc.field)
            ext = source.external_id if isinstance(source, Contact) else _external_id_of(source)
            return rejected(index, error, source, ext)
        except UnsupportedFeature as exc:
            assert isinstance(source, Contact)
            error = OutcomeError("unsupported_feature", str(exc), field=_field_of(exc))
            return rejected(index, error, source, source.external_id)
        identity = self.provider.identity(contact, payload)
        return Prepared(index, contact, payload, tuple(ctx.warnings), identity)

    def stage(self, inputs: Iterable[ContactInput]) -> Iterator[Prepared[Any] | Outcome]:
        for position, item in enumerate(inputs):
            yield self.prepare(input_index(item, position), item)

    def scheduler(self) -> Scheduler:
        return Scheduler(self.provider, self.max_batch, max_open=self.max_open)


@attrs.frozen
class Done:
    outcomes: Sequence[Outcome]
    """What the flow returned (outcomes it yielded on the way were handed out then)."""
    error: OutcomeError | None = None
    """Set when the flow ended by an error rather than by returning: it applies to the
    contacts that have no outcome yet."""


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
                error = OutcomeError("unsupported_feature", str(exc), field=_field_of(exc))
                self._start_error = self._failed(error)

    def _failed(self, error: OutcomeError) -> Done:
        return Done((), error)

    def start(self) -> Step | Outcome | Done:
        if self._start_error is not None:
            return self._start_error
        return self._advance(next)

    def send(self, response: Response | None) -> Step | Outcome | Done:
        return self._advance(lambda flow: flow.send(response))

    def throw(self, error: RequestFailed) -> Step | Outcome | Done:
        return self._advance(lambda flow: flow.throw(error))

    def _advance(self, move: Any) -> Step | Outcome | Done:
        assert self._flow is not None
        try:
            step = move(self._flow)
        except StopIteration as stop:
            value = stop.value if self._batch else None
            return Done(value or ())
        except RequestFailed as exc:
            return self._failed(
                OutcomeError(
                    exc.code, str(exc), status_code=exc.status_code, retryable=exc.retryable
                )
            )
        except Exception as exc:
            tenant = self._provider.tenant
            TenantLog(tenant.name, self._provider.name, tenant.credentials).exception(
                "the provider's flow raised", indexes=[item.index for item in self._batch]
            )
            return self._failed(OutcomeError("provider_error", f"{type(exc).__name__}: {exc}"))
        if not isinstance(step, Request | Sleep | Recall | Outcome):
            self._flow.close()
            return self._failed(
                OutcomeError("provider_error", f"flow yielded {type(step).__name__}")
            )
        return step
