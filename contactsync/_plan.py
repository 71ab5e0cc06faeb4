"""``plan``: the requests an upsert would send, computed without sending anything."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from ._outcome import Outcome, Status
from ._pipeline import ContactInput, Done, FlowStepper, Pipeline, input_index
from ._provider import NOTHING_RECALLED, Prepared, Provider, Recall, Request, Sleep
from ._schedule import Batch, Scheduler

if TYPE_CHECKING:
    from ._engine import SetupResult
from ._wire import masked_headers, signed, to_httpx


@attrs.frozen
class PlannedRequest:
    contacts: tuple[int, ...]
    method: str
    url: str
    headers: dict[str, str]
    """Secret headers shown as ``***``."""
    body: Any
    sent: bool = False
    """True for the provider's read-only setup requests, which ``plan`` really sent."""

    def to_json(self) -> dict[str, Any]:
        return {
            "contacts": list(self.contacts),
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "body": self.body,
            "sent": self.sent,
        }


Judge = Callable[[Prepared[Any]], "Prepared[Any] | Outcome"]
"""What a state store says of a mapped contact: an outcome that needs no request
(``unchanged``, ``skipped``), or the contact to plan (with what the store knows)."""


def plan(
    pipeline: Pipeline,
    base_url: str,
    inputs: Iterable[ContactInput],
    setup: SetupResult | None = None,
    judge: Judge | None = None,
) -> Iterator[PlannedRequest | Outcome]:
    """Yield each request in order, and the rejected contacts' outcomes.

    ``setup`` holds the read-only setup requests the client really sent (shown first,
    ``sent=True``); when setup failed, every contact is ``failed`` with its error, as
    an upsert would report it. Contacts are scheduled as an upsert schedules them (by
    identity; see :mod:`._schedule`). A flow that needs a response continues only
    where the provider says what to assume (``Request.plan_response``, e.g. "not
    found" for a lookup); otherwise its plan ends at that request. With ``judge`` (a
    state store read), contacts it settles are yielded as outcomes, unplanned.
    """
    provider = pipeline.provider
    auth = provider.auth()
    # A bare client is only used to build requests the way the engine does.
    with httpx.Client(base_url=base_url) as builder:

        def planned(step: Request, sent: bool = False) -> PlannedRequest:
            request = signed(to_httpx(builder, step), auth)
            body = json.loads(request.content) if request.content else None
            return PlannedRequest(
                contacts=step.contacts,
                method=request.method,
                url=str(request.url),
                headers=masked_headers(request.headers, provider.secret_headers),
                body=body,
                sent=sent,
            )

        if setup is not None:
            for step in setup.requests:
                yield planned(step, sent=True)
            if setup.error is not None:
                for position, item in enumerate(inputs):
                    yield Outcome(input_index(item, position), Status.FAILED, error=setup.error)
                return
        scheduler = pipeline.scheduler()
        stages = pipeline.stage(inputs)
        if judge is not None:
            stages = (s if isinstance(s, Outcome) else judge(s) for s in stages)
        for staged in stages:
            if isinstance(staged, Outcome):
                yield staged
                continue
            scheduler.add(staged)
            while (batch := scheduler.take()) is not None:
                yield from _plan_batch(provider, batch, planned, scheduler)
        while scheduler.buffered:
            scheduler.flush()
            while (batch := scheduler.take()) is not None:
                yield from _plan_batch(provider, batch, planned, scheduler)


def _plan_batch(
    provider: Provider[Any],
    batch: Batch,
    planned: Callable[[Request], PlannedRequest],
    scheduler: Scheduler,
) -> Iterator[PlannedRequest]:
    stepper = FlowStepper(provider, batch)
    step = stepper.start()
    while not isinstance(step, Done):
        if isinstance(step, Sleep | Outcome):
            step = stepper.send(None)
            continue
        if isinstance(step, Recall):
            # A plan reads no state mid-flow: it shows what a run knowing nothing sends.
            step = stepper.send(NOTHING_RECALLED)
            continue
        yield planned(step)
        if step.plan_response is None:
            break
        step = stepper.send(step.plan_response)
    # A plan assumes every row it showed went through: the next rows may follow.
    for item in batch:
        scheduler.release(item.index)
