"""The engine: one asyncio driver behind both clients.

It takes input, has the provider prepare each contact, schedules prepared contacts by
identity (:mod:`._schedule`), runs provider flows with bounded concurrency, sends
their requests (rate limit, retries, safe resending) and hands out exactly one
outcome per input contact, each as soon as it is known.

Why one asyncio implementation: scheduling, batching, retries and reconciliation are
the subtle parts, and two copies drift. The sync :class:`~contactsync.Client` runs
this same driver on a private event-loop thread (:mod:`._loop`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import attrs
import httpx

from ._config import Tenant
from ._errors import RequestFailed
from ._outcome import ErrorCode, Outcome, OutcomeError, Status, Summary
from ._pipeline import ContactInput, Done, FlowStepper, Pipeline, input_index
from ._provider import Prepared, Provider, Request, Response, Sleep
from ._ratelimit import RateLimit, build_limiter
from ._retry import Breaker, Failure, RetryPolicy, classify_exception
from ._schedule import Batch, Scheduler
from ._wire import from_httpx, to_httpx

log = logging.getLogger("contactsync")


def rate_limits(tenant: Tenant, provider: Provider[Any]) -> tuple[RateLimit, ...]:
    """The provider's documented limits, and the tenant's own when it sets one (a
    request must fit every limit it matches, so the tenant can only lower them)."""
    limits = provider.capabilities.rate_limits
    chosen = tenant.http.requests_per_second
    if chosen is not None:
        limits = (*limits, RateLimit.from_rate(chosen))
    return limits


def effective_concurrency(tenant: Tenant, provider: Provider[Any]) -> int:
    return tenant.http.concurrency or provider.capabilities.default_concurrency


def read_ahead(concurrency: int, max_batch: int) -> int:
    """How many input contacts a run holds at most (waiting, batched or in flight):
    enough to keep every flow busy with one batch filling, and some slack so that rows
    waiting for an earlier row of their person do not stall the input."""
    return max(64, concurrency * max_batch + max_batch)


def _label(request: Request) -> str:
    # The path only: query strings may carry ids, never worth logging.
    return f"{request.method} {request.path.split('?')[0]}"


async def _aiter(
    inputs: Iterable[ContactInput] | AsyncIterable[ContactInput],
) -> AsyncIterator[ContactInput]:
    if isinstance(inputs, AsyncIterable):
        async for item in inputs:
            yield item
    else:
        for item in inputs:
            yield item


@attrs.frozen
class SetupResult:
    """What ``plan`` learned from running the provider's setup read-only."""

    requests: tuple[Request, ...] = ()
    """The setup requests sent (all read-only)."""
    error: OutcomeError | None = None


class _FlowRun:
    """One flow's bookkeeping: which of its contacts were sent, and how often."""

    def __init__(self, batch: Batch, *, read_only: bool = False) -> None:
        self.items = {item.index: item for item in batch}
        self.requests = dict.fromkeys(self.items, 0)
        self.settled: set[int] = set()
        self.read_only = read_only
        """Refuse anything but read-only requests (``plan`` running a setup flow)."""
        self.log: list[Request] = []

    def note(self, request: Request) -> None:
        for index in request.contacts:
            if index in self.requests:
                self.requests[index] += 1


class Engine:
    """Drives one tenant's provider. Not thread-safe: use it from one event loop."""

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
        # Rate limits are real time, whatever ``sleep`` is (tests shorten retry waits).
        self.limiter = build_limiter(rate_limits(tenant, provider), key=tenant.name)
        self.policy = RetryPolicy(tenant.http)
        self.breaker = Breaker(tenant.http.breaker_after)
        self.auth_refused: str | None = None
        """Set once the platform refused the credentials: nothing more is sent."""
        self.tenant = tenant
        self._sleep = sleep
        self.sent = 0
        """Requests sent by this engine, retries included."""
        self._setup_ok = False
        self._setup_lock: asyncio.Lock | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        """The most flows that ran at once (never above ``concurrency``)."""

    # --- sending ----------------------------------------------------------------------

    def _raise_if_stopped(self, request: Request) -> None:
        if self.auth_refused is not None:
            raise RequestFailed(
                f"not sent: {self.auth_refused}", retryable=False, code=ErrorCode.AUTH_FAILED
            )
        if self.breaker.is_open:
            raise RequestFailed(
                f"not sent: {self.provider.name} has been unreachable for "
                f"{self.settings.breaker_after:g} s (http.breaker_after)",
                code=ErrorCode.PLATFORM_UNREACHABLE,
            )

    async def send(self, request: Request, run: _FlowRun | None = None) -> Response:
        """Send ``request`` under the tenant's retry budget; raise :class:`RequestFailed`
        when it cannot be completed.

        429 and answers the provider calls "not applied" are resent until the budget
        (``http.retry_for``) runs out; a transport error after the request went out
        or another retryable answer is resent only when the request is safe to
        resend, otherwise the flow is told it may have been applied. A refusal of
        the credentials stops every later request of the run (fail fast), and so
        does a platform that cannot be reached for ``http.breaker_after`` seconds.
        """
        if run is not None and run.read_only:
            if not request.is_read_only:
                raise RequestFailed(
                    f"{_label(request)} is not read-only: plan does not send it",
                    retryable=False,
                )
            run.log.append(request)
        label = _label(request)
        path = request.path.split("?", 1)[0]
        budget = self.policy.start()
        attempts = 0
        while True:
            self._raise_if_stopped(request)
            await self.limiter.acquire(request.method, path)
            attempts += 1
            self.sent += 1
            if run is not None:
                run.note(request)
            try:
                async with asyncio.timeout(budget.attempt_timeout()):
                    response = from_httpx(await self.client.send(to_httpx(self.client, request)))
            except (httpx.TransportError, TimeoutError) as exc:
                failure = classify_exception(exc)
                self.breaker.record_transport_failure()
                detail = f"{failure.description} ({failure.exception})"
                unsafe = failure.maybe_applied and not request.safe_to_resend
                if failure.permanent or unsafe:
                    raise RequestFailed(
                        f"{label} failed after {attempts} attempt(s): {detail}"
                        + ("; it may have been applied" if unsafe else ""),
                        retryable=not failure.permanent,
                        maybe_applied=unsafe,
                    ) from None
                delay = budget.next_delay(Failure.from_transport(failure))
                if delay is None:
                    raise RequestFailed(
                        f"{label} failed after {attempts} attempt(s): {detail}"
                    ) from None
                log.info("%s: %s; retry %d in %.2fs", label, detail, attempts, delay)
                await self._sleep(delay)
                continue
            self.breaker.record_response()
            if self.provider.is_auth_failure(response):
                self.auth_refused = (
                    f"{self.provider.name} refused the credentials of tenant "
                    f"{self.tenant.name!r} (HTTP {response.status_code}); check "
                    f"tenants.{self.tenant.name}.credentials"
                )
                raise RequestFailed(
                    self.auth_refused,
                    status_code=response.status_code,
                    retryable=False,
                    code=ErrorCode.AUTH_FAILED,
                )
            if not self.provider.is_retryable(response):
                return response
            if not request.safe_to_resend and not self.provider.not_applied(response):
                raise RequestFailed(
                    f"{label} answered HTTP {response.status_code} after {attempts} "
                    "attempt(s); it may have been applied",
                    status_code=response.status_code,
                    maybe_applied=True,
                )
            delay = budget.next_delay(Failure.from_response(response))
            if delay is None:
                raise RequestFailed(
                    f"{label} answered HTTP {response.status_code} after {attempts} attempt(s)",
                    status_code=response.status_code,
                )
            log.info("%s: HTTP %d; retry %d in %.2fs", label, response.status_code, attempts, delay)
            await self._sleep(delay)

    async def _drive(
        self, stepper: FlowStepper, run: _FlowRun, report: Callable[[Outcome], None]
    ) -> Done:
        step = stepper.start()
        while not isinstance(step, Done):
            if isinstance(step, Outcome):
                report(step)
                step = stepper.send(None)
            elif isinstance(step, Sleep):
                await self._sleep(step.seconds)
                step = stepper.send(None)
            else:
                try:
                    response = await self.send(step, run)
                except RequestFailed as exc:
                    step = stepper.throw(exc)
                else:
                    step = stepper.send(response)
        return step

    # --- setup ------------------------------------------------------------------------

    async def plan_setup(self) -> SetupResult:
        """Run the setup flow for ``plan``: read-only requests only."""
        run = _FlowRun([], read_only=True)
        error = await self.ensure_setup(run)
        return SetupResult(tuple(run.log), error)

    async def ensure_setup(self, run: _FlowRun | None = None) -> OutcomeError | None:
        """Run the provider's setup flow unless it already succeeded. Shared by
        concurrent runs; a failure is not remembered (the next run tries again)."""
        if self._setup_ok:
            return None
        if self._setup_lock is None:
            self._setup_lock = asyncio.Lock()
        async with self._setup_lock:
            if self._setup_ok:
                return None
            flow = self.provider.setup()
            if flow is not None:
                done = await self._drive(
                    FlowStepper(self.provider, [], flow), run or _FlowRun([]), lambda _: None
                )
                if done.error is not None:
                    return OutcomeError(
                        ErrorCode.SETUP_FAILED,
                        f"{self.provider.name} setup did not complete: {done.error.message}",
                        status_code=done.error.status_code,
                        retryable=True,
                    )
            self._setup_ok = True
            return None

    # --- running ----------------------------------------------------------------------

    async def run(
        self, inputs: Iterable[ContactInput] | AsyncIterable[ContactInput], summary: Summary
    ) -> AsyncIterator[list[Outcome]]:
        """Outcomes in the order they become known, a list at a time."""
        runner = _Run(self, summary)
        async for outcomes in runner.run(inputs):
            yield outcomes


class _Run:
    """One ``upsert_many``: input → scheduler → flows → outcomes."""

    def __init__(self, engine: Engine, summary: Summary) -> None:
        self.engine = engine
        self.summary = summary
        self.scheduler: Scheduler = engine.pipeline.scheduler()
        self.emitted: list[Outcome] = []
        self.progress = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.limit = read_ahead(engine.concurrency, engine.pipeline.max_batch)
        self.base = engine.sent
        # A new run tries again: credentials may have been fixed, the platform be back.
        engine.auth_refused = None
        engine.breaker = Breaker(engine.settings.breaker_after)
        self.exhausted = False
        self.input_error: BaseException | None = None
        self.setup_error: OutcomeError | None = None
        self.position = 0

    def _emit(self, outcome: Outcome) -> None:
        self.summary.add(outcome)
        self.summary.requests = self.engine.sent - self.base
        self.emitted.append(outcome)
        self.progress.set()

    def _settle(self, run: _FlowRun, outcome: Outcome) -> None:
        item = run.items.get(outcome.index)
        if item is None or outcome.index in run.settled:
            log.warning(
                "%s reported an unexpected or second outcome for input %d; ignored",
                self.engine.provider.name,
                outcome.index,
            )
            return
        run.settled.add(outcome.index)
        # Built directly, not with attrs.evolve: this runs once per contact.
        self._emit(
            Outcome(
                outcome.index,
                outcome.status,
                remote_id=outcome.remote_id,
                external_id=item.contact.external_id,
                warnings=item.warnings + outcome.warnings,
                error=outcome.error,
                requests=run.requests[outcome.index],
                input=item.contact,
            )
        )
        self.scheduler.release(outcome.index)

    async def _flow(self, batch: Batch) -> None:
        engine = self.engine
        run = _FlowRun(batch)
        engine.in_flight += 1
        engine.max_in_flight = max(engine.max_in_flight, engine.in_flight)
        try:
            done = await engine._drive(
                FlowStepper(engine.provider, batch), run, lambda o: self._settle(run, o)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in the engine or provider: never lose contacts
            log.exception("%s flow crashed", engine.provider.name)
            done = Done((), OutcomeError(ErrorCode.PROVIDER_ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            engine.in_flight -= 1
        for outcome in done.outcomes:
            self._settle(run, outcome)
        for item in batch:
            if item.index not in run.settled:
                self._settle(run, self._unsettled(item, run, done.error))

    @staticmethod
    def _unsettled(item: Prepared[Any], run: _FlowRun, error: OutcomeError | None) -> Outcome:
        if error is None:
            error = OutcomeError(ErrorCode.PROVIDER_ERROR, "the provider reported no outcome")
        elif not run.requests[item.index]:
            error = OutcomeError(
                ErrorCode.NOT_SENT,
                f"not sent: an earlier step of its flow failed ({error.message})",
                retryable=True,
            )
        return Outcome(item.index, Status.FAILED, error=error)

    def _start_ready(self) -> None:
        while len(self.tasks) < self.engine.concurrency:
            batch = self.scheduler.take()
            if batch is None:
                return
            task = asyncio.ensure_future(self._flow(batch))
            self.tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.progress.set()

    async def _take(self, source: AsyncIterator[ContactInput]) -> None:
        """Read and prepare input until the read-ahead is full or the input ends."""
        engine = self.engine
        taken = 0
        while not self.exhausted and self.scheduler.buffered < self.limit:
            try:
                raw = await anext(source)
            except StopAsyncIteration:
                self.exhausted = True
                return
            except Exception as exc:
                # Re-raised once every contact already taken has its outcome.
                self.input_error, self.exhausted = exc, True
                return
            index = input_index(raw, self.position)
            self.position += 1
            if self.setup_error is not None:
                self._emit(Outcome(index, Status.FAILED, error=self.setup_error, input=raw))
                continue
            item = engine.pipeline.prepare(index, raw)
            if isinstance(item, Outcome):
                self._emit(item)
                continue
            self.scheduler.add(item)
            self._start_ready()
            taken += 1
            if taken % 64 == 0:
                await asyncio.sleep(0)  # let flows in flight move on

    async def run(
        self, inputs: Iterable[ContactInput] | AsyncIterable[ContactInput]
    ) -> AsyncIterator[list[Outcome]]:
        self.setup_error = await self.engine.ensure_setup()
        source = _aiter(inputs)
        try:
            while True:
                await self._take(source)
                if (
                    (self.exhausted or self.scheduler.buffered >= self.limit)
                    and len(self.tasks) < self.engine.concurrency
                    and not self.scheduler.has_ready
                ):
                    # Nothing more to take for now: send what is waiting to fill up.
                    self.scheduler.flush()
                self._start_ready()
                if self.emitted:
                    outcomes, self.emitted = self.emitted, []
                    yield outcomes
                    continue
                if self.exhausted and not self.tasks and self.scheduler.buffered == 0:
                    break
                if not self.tasks and not self.scheduler.has_ready:
                    if self.exhausted and self.scheduler.open_rows == 0:
                        raise AssertionError("rows wait with nothing in flight")  # a bug
                    continue
                await self.progress.wait()
                self.progress.clear()
        finally:
            for task in self.tasks:
                task.cancel()
        if self.input_error is not None:
            raise self.input_error
