"""``plan``: the requests an upsert would send, computed without sending anything."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import attrs
import httpx

from ._outcome import Outcome
from ._pipeline import ContactInput, Done, FlowStepper, Pipeline
from ._provider import Sleep
from ._wire import masked_headers, signed, to_httpx


@attrs.frozen
class PlannedRequest:
    contacts: tuple[int, ...]
    method: str
    url: str
    headers: dict[str, str]
    """Secret headers shown as ``***``."""
    body: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "contacts": list(self.contacts),
            "method": self.method,
            "url": self.url,
            "headers": self.headers,
            "body": self.body,
        }


def plan(
    pipeline: Pipeline, base_url: str, inputs: Iterable[ContactInput]
) -> Iterator[PlannedRequest | Outcome]:
    """Yield each request in order, and the rejected contacts' outcomes.

    A flow that needs a response continues only where the provider says what to
    assume (``Request.plan_response``, e.g. "not found" for a lookup); otherwise
    its plan ends at that request.
    """
    provider = pipeline.provider
    auth = provider.auth()
    # A bare client is only used to build requests the way the engine does.
    with httpx.Client(base_url=base_url) as builder:
        for item in pipeline.batches(pipeline.stage(inputs)):
            if isinstance(item, Outcome):
                yield item
                continue
            stepper = FlowStepper(provider, item)
            step = stepper.start()
            while not isinstance(step, Done):
                if isinstance(step, Sleep):
                    step = stepper.send(None)
                    continue
                request = signed(to_httpx(builder, step), auth)
                body = json.loads(request.content) if request.content else None
                yield PlannedRequest(
                    contacts=step.contacts,
                    method=request.method,
                    url=str(request.url),
                    headers=masked_headers(request.headers, provider.secret_headers),
                    body=body,
                )
                if step.plan_response is None:
                    break
                step = stepper.send(step.plan_response)
