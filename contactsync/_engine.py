"""The engines: they send what provider flows ask for, with retries, rate limit and
bounded concurrency, and stream one outcome per input contact."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import Any

import httpx

from ._config import Tenant
from ._errors import RequestFailed
from ._outcome import Outcome, OutcomeError, Summary
from ._pipeline import (
    Batch,
    ContactInput,
    Done,
    FlowStepper,
    Pipeline,
    failed_batch,
    input_index,
)
from ._provider import Provider, Request, Response, Sleep
from ._ratelimit import AsyncRateLimiter, RateLimiter
from ._retry import async_retrying, sync_retrying
from ._wire import from_httpx, to_httpx

log = logging.getLogger("contactsync")


def effective_rate(tenant: Tenant, provider: Provider[Any]) -> float | None:
    documented = provider.capabilities.requests_per_second
    chosen = tenant.http.requests_per_second
    if documented is None or chosen is None:
        return chosen if documented is None else documented
    return min(documented, chosen)


def effective_concurrency(tenant: Tenant, provider: Provider[Any]) -> int:
    return tenant.http.concurrency or provider.capabilities.default_concurrency


def _label(request: Request) -> str:
    # The path only: query strings may carry ids, never worth logging.
    return f"{request.method} {request.path.split('?')[0]}"


def _exhausted(request: Request, response: Response, attempts: int) -> RequestFailed:
    return RequestFailed(
        f"{_label(request)} answered HTTP {response.status_code} after {attempts} attempt(s)",
        status_code=response.status_code,
    )


def _transport_failed(request: Request, exc: httpx.TransportError, attempts: int) -> RequestFailed:
    return RequestFailed(
        f"{_label(request)} failed: {type(exc).__name__}: {exc} after {attempts} attempt(s)"
    )


class _Counter:
    """Requests sent, retries included; shared by the threads of one run."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def bump(self) -> None:
        with self._lock:
            self.value += 1


class SyncEngine:
    def __init__(
        self,
        tenant: Tenant,
        provider: Provider[Any],
        client: httpx.Client,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pipeline = Pipeline(tenant, provider)
        self.provider = provider
        self.client = client
        self.settings = tenant.http
        self.concurrency = effective_concurrency(tenant, provider)
        self.limiter = RateLimiter(effective_rate(tenant, provider), sleep=sleep)
        self._sleep = sleep
        self.sent = _Counter()
        self.setup_done = False
        self.setup_error: OutcomeError | None = None

    def _send(self, request: Request, count: list[int]) -> Response:
        def attempt() -> Response:
            self.limiter.acquire()
            count[0] += 1
            self.sent.bump()
            return from_httpx(self.client.send(to_httpx(self.client, request)))

        retrying = sync_retrying(
            self.settings,
            self.provider.is_retryable,
            enabled=request.retry,
            sleep=self._sleep,
            label=_label(request),
        )
        try:
            response: Response = retrying(attempt)
        except httpx.TransportError as exc:
            raise _transport_failed(request, exc, count[0]) from None
        if self.provider.is_retryable(response):
            raise _exhausted(request, response, count[0])
        return response

    def _drive(self, stepper: FlowStepper, count: list[int]) -> Done:
        step = stepper.start()
        while not isinstance(step, Done):
            if isinstance(step, Sleep):
                self._sleep(step.seconds)
                step = stepper.send(None)
                continue
            try:
                response = self._send(step, count)
            except RequestFailed as exc:
                step = stepper.throw(exc)
            else:
                step = stepper.send(response)
        return step

    def _setup(self) -> None:
        if self.setup_done:
            return
        self.setup_done = True
        flow = self.provider.setup()
        if flow is not None:
            self.setup_error = self._drive(FlowStepper(self.provider, [], flow), [0]).error

    def run_batch(self, batch: Batch) -> list[Outcome]:
        if self.setup_error is not None:
            return self.pipeline.finish(batch, failed_batch(batch, self.setup_error), 0)
        count = [0]
        done = self._drive(FlowStepper(self.provider, batch), count)
        return self.pipeline.finish(batch, done.outcomes, count[0])

    def run(self, inputs: Iterable[ContactInput], summary: Summary) -> Iterator[Outcome]:
        self._setup()
        base = self.sent.value
        work = self.pipeline.batches(self.pipeline.stage(inputs))
        with cf.ThreadPoolExecutor(self.concurrency, thread_name_prefix="contactsync") as pool:
            pending: set[cf.Future[list[Outcome]]] = set()

            def drain(block: bool) -> Iterator[Outcome]:
                nonlocal pending
                if not pending:
                    return
                done, pending = cf.wait(
                    pending, timeout=None if block else 0, return_when=cf.FIRST_COMPLETED
                )
                for future in done:
                    for outcome in future.result():
                        yield self._count(outcome, summary, base)

            for item in work:
                if isinstance(item, Outcome):
                    yield self._count(item, summary, base)
                    continue
                pending.add(pool.submit(self.run_batch, item))
                yield from drain(block=len(pending) > self.concurrency)
            while pending:
                yield from drain(block=True)

    def _count(self, outcome: Outcome, summary: Summary, base: int) -> Outcome:
        summary.add(outcome)
        summary.requests = self.sent.value - base
        return outcome


async def _aiter(
    inputs: Iterable[ContactInput] | AsyncIterable[ContactInput],
) -> AsyncIterator[ContactInput]:
    if isinstance(inputs, AsyncIterable):
        async for item in inputs:
            yield item
    else:
        for item in inputs:
            yield item


class AsyncEngine:
    def __init__(
        self,
        tenant: Tenant,
        provider: Provider[Any],
        client: httpx.AsyncClient,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.pipeline = Pipeline(tenant, provider)
        self.provider = provider
        self.client = client
        self.settings = tenant.http
        self.concurrency = effective_concurrency(tenant, provider)
        self.limiter = AsyncRateLimiter(effective_rate(tenant, provider), sleep=sleep)
        self._sleep = sleep
        self.sent = 0
        self.setup_done = False
        self.setup_error: OutcomeError | None = None

    async def _send(self, request: Request, count: list[int]) -> Response:
        async def attempt() -> Response:
            await self.limiter.acquire()
            count[0] += 1
            self.sent += 1
            return from_httpx(await self.client.send(to_httpx(self.client, request)))

        retrying = async_retrying(
            self.settings,
            self.provider.is_retryable,
            enabled=request.retry,
            sleep=self._sleep,
            label=_label(request),
        )
        try:
            response: Response = await retrying(attempt)
        except httpx.TransportError as exc:
            raise _transport_failed(request, exc, count[0]) from None
        if self.provider.is_retryable(response):
            raise _exhausted(request, response, count[0])
        return response

    async def _drive(self, stepper: FlowStepper, count: list[int]) -> Done:
        step = stepper.start()
        while not isinstance(step, Done):
            if isinstance(step, Sleep):
                await self._sleep(step.seconds)
                step = stepper.send(None)
                continue
            try:
                response = await self._send(step, count)
            except RequestFailed as exc:
                step = stepper.throw(exc)
            else:
                step = stepper.send(response)
        return step

    async def _setup(self) -> None:
        if self.setup_done:
            return
        self.setup_done = True
        flow = self.provider.setup()
        if flow is not None:
            done = await self._drive(FlowStepper(self.provider, [], flow), [0])
            self.setup_error = done.error

    async def run_batch(self, batch: Batch) -> list[Outcome]:
        if self.setup_error is not None:
            return self.pipeline.finish(batch, failed_batch(batch, self.setup_error), 0)
        count = [0]
        done = await self._drive(FlowStepper(self.provider, batch), count)
        return self.pipeline.finish(batch, done.outcomes, count[0])

    async def run(
        self, inputs: Iterable[ContactInput] | AsyncIterable[ContactInput], summary: Summary
    ) -> AsyncIterator[Outcome]:
        pending: set[asyncio.Task[list[Outcome]]] = set()
        batcher = self.pipeline.batcher()

        async def drain(block: bool) -> list[Outcome]:
            nonlocal pending
            if not pending:
                return []
            done, pending = await asyncio.wait(
                pending, timeout=None if block else 0, return_when=asyncio.FIRST_COMPLETED
            )
            return [self._count(o, summary, base) for task in done for o in task.result()]

        def start(batch: Batch) -> None:
            pending.add(asyncio.ensure_future(self.run_batch(batch)))

        await self._setup()
        base = self.sent
        try:
            position = 0
            async for raw in _aiter(inputs):
                index = input_index(raw, position)
                position += 1
                for item in batcher.add(self.pipeline.prepare(index, raw)):
                    if isinstance(item, Outcome):
                        yield self._count(item, summary, base)
                    else:
                        start(item)
                for outcome in await drain(block=len(pending) > self.concurrency):
                    yield outcome
            for batch in batcher.flush():
                start(batch)
            while pending:
                for outcome in await drain(block=True):
                    yield outcome
        finally:
            for task in pending:
                task.cancel()

    def _count(self, outcome: Outcome, summary: Summary, base: int) -> Outcome:
        summary.add(outcome)
        summary.requests = self.sent - base
        return outcome
