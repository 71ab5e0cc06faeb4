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
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Generator, Iterable
from typing import Any

import attrs
import httpx

from ._errors import BatchRefused, RequestFailed
from ._incremental import Incremental
from ._logs import TenantLog
from ._outcome import ErrorCode, Outcome, OutcomeError, Summary
from ._pipeline import ContactInput, Done, FlowStepper, Pipeline
from ._provider import NOTHING_RECALLED, Provider, Recall, Request, Response, Sleep, Step
from ._ratelimit import RateLimit, build_limiter, with_headroom
from ._retry import Breaker, Failure, RetryBudget, RetryPolicy, classify_exception
from ._run import Execution, FlowRun
from ._secret import MASK, Scrubber
from ._tenant import Tenant
from ._wire import Wire


def rate_limits(tenant: Tenant, provider: Provider[Any]) -> tuple[RateLimit, ...]:
    """The provider's documented limits (at 90%: see ``HEADROOM``), and the tenant's
    own when it sets one (a request must fit every limit it matches, so the tenant can
    only lower them)."""
    limits = tuple(with_headroom(limit) for limit in provider.capabilities.rate_limits)
    chosen = tenant.http.requests_per_second
    if chosen is not None:
        limits = (*limits, RateLimit.from_rate(chosen))
    return limits


def effective_concurrency(tenant: Tenant, provider: Provider[Any]) -> int:
    return tenant.http.concurrency or provider.capabilities.default_concurrency


def _label(request: Request) -> str:
    # The path only: query strings may carry ids, never worth logging.
    return f"{request.method} {request.path.split('?')[0]}"


@attrs.frozen
class SetupResult:
    """What ``plan`` learned from running the provider's setup read-only."""

    requests: tuple[Request, ...] = ()
    """The setup requests sent (all read-only)."""
    error: OutcomeError | None = None


class Engine:
    """Drives one tenant's provider. Not thread-safe: use it from one event loop."""

    def __init__(
        self,
        tenant: Tenant,
        provider: Provider[Any],
        client: httpx.AsyncClient,
        *,
        transport: httpx.AsyncBaseTransport,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        limiter_storage: str = "memory://",
    ) -> None:
        self.pipeline = Pipeline(tenant, provider)
        self.provider = provider
        self.log = TenantLog(tenant.name, provider.name, tenant.credentials)
        self.client = client
        # Requests go straight through ``transport`` (the client's), with the client's
        # URL, headers, timeout and auth: see :class:`Wire`.
        self._wire = Wire(client, transport)
        self.settings = tenant.http
        self.concurrency = effective_concurrency(tenant, provider)
        # ``limiter_storage`` is where the windows live: this process (memory://), or
        # Redis, shared by every process that runs this tenant. A caller that brings its
        # own clock (a test in simulated time) gets windows on that clock, waited out
        # with its ``sleep``; with the default clock, rate limits are real time whatever
        # ``sleep`` is (tests shorten retry waits with a ``sleep`` alone). A shared
        # window keeps the library's clock, which every process reads alike.
        own_time = clock is not time.monotonic and limiter_storage.startswith(
            ("memory://", "async+memory://")
        )
        self.limiter = build_limiter(
            rate_limits(tenant, provider),
            key=tenant.name,
            storage_uri=limiter_storage,
            sleep=sleep if own_time else None,
            clock=clock if own_time else None,
        )
        self._clock = clock
        self.policy = RetryPolicy(tenant.http, clock=clock)
        self.breaker = Breaker(tenant.http.breaker_after, clock)
        self.auth_refused: str | None = None
        """Set once the platform refused the credentials: nothing more is sent."""
        self.tenant = tenant
        self.scrubber = Scrubber.for_credentials(tenant.credentials)
        self._sleep = sleep
        self.sent = 0
        """Requests sent by this engine, retries included."""
        self._setup_ok = False
        self._setup_lock: asyncio.Lock | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        """The most flows that ran at once (never above ``concurrency``)."""

    # --- sending ----------------------------------------------------------------------

    def _scrubbed(self, sent: httpx.Request, received: httpx.Response) -> Response:
        """The response, with every credential the request carried masked: a platform
        that echoes request headers back (in an error body, say) must not hand the key
        or a per-request signature to flows, outcomes or logs."""
        content = received.content
        for name in self.provider.secret_headers:
            value = sent.headers.get(name)
            if not value:
                continue
            for part in {value, *value.replace(":", " ").split()}:
                if len(part) >= 8 and part.encode() in content:
                    content = content.replace(part.encode(), MASK.encode())
        # Successful answers too: some platforms say "error" with HTTP 200, and a flow
        # that keeps the start of the body in a message would cut an echo in two,
        # beyond what a scrub of that message can recognise.
        if content:
            text = content.decode("utf-8", "replace")
            cleaned = self.scrubber.scrub(text)
            if cleaned != text:
                content = cleaned.encode("utf-8")
        return Response(received.status_code, content, dict(received.headers))

    def _after_transport_error(
        self,
        exc: BaseException,
        request: Request,
        run: FlowRun | None,
        budget: RetryBudget,
        attempts: int,
        applied: bool,
    ) -> float:
        """Seconds to wait before resending after ``exc``, or raise ``RequestFailed``.
        ``applied``: an earlier attempt may have been applied (its answer was lost)."""
        label = _label(request)
        failure = classify_exception(exc)
        self.breaker.record_transport_failure()
        detail = f"{failure.description} ({failure.exception})"
        unsafe = failure.maybe_applied and not request.safe_to_resend
        if unsafe and run is not None:
            run.note_unsafe(request)
        # A request safe to resend whose answer was lost may still have been applied:
        # when no later attempt completes, the contact's outcome is unknown, never
        # "not applied" (resending it stays harmless, so it stays retryable).
        # A look-up changes nothing, whatever became of it.
        maybe = unsafe or applied or (failure.maybe_applied and not request.is_read_only)
        if failure.permanent or unsafe:
            raise RequestFailed(
                f"{label} failed after {attempts} attempt(s): {detail}"
                + ("; it may have been applied" if maybe else ""),
                retryable=not failure.permanent and not unsafe,
                maybe_applied=maybe,
            ) from None
        delay = budget.next_delay(Failure.from_transport(failure))
        if delay is None:
            raise RequestFailed(
                f"{label} failed after {attempts} attempt(s): {detail}"
                + ("; it may have been applied" if maybe else ""),
                maybe_applied=maybe,
            ) from None
        self.log.info(
            "%s: %s; retry %d in %.2fs", label, detail, attempts, delay, indexes=request.contacts
        )
        return delay

    def _raise_if_stopped(self, request: Request, applied: bool) -> None:
        """Stop before an attempt when the run fails fast. ``applied``: an earlier
        attempt of ``request`` may have been applied, so its outcome is unknown, not
        "not sent"."""
        if self.auth_refused is not None:
            if applied:
                raise RequestFailed(
                    f"not sent again: {self.auth_refused}; an earlier attempt lost its "
                    "answer and may have been applied",
                    retryable=False,
                    maybe_applied=True,
                )
            raise RequestFailed(
                f"not sent: {self.auth_refused}", retryable=False, code=ErrorCode.AUTH_FAILED
            )
        if self.breaker.is_open:
            unreachable = (
                f"{self.provider.name} has been unreachable for "
                f"{self.settings.breaker_after:g} s (http.breaker_after)"
            )
            if applied:
                raise RequestFailed(
                    f"not sent again: {unreachable}; an earlier attempt lost its answer "
                    "and may have been applied",
                    maybe_applied=True,
                )
            raise RequestFailed(f"not sent: {unreachable}", code=ErrorCode.PLATFORM_UNREACHABLE)

    async def send(self, request: Request, run: FlowRun | None = None) -> Response:
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
        applied = False
        """An attempt lost its answer after the request went out: it may have been applied."""
        while True:
            self._raise_if_stopped(request, applied)
            await self.limiter.acquire(request.method, path)
            attempts += 1
            self.sent += 1
            if run is not None:
                run.note(request)
            try:
                built = self._wire.build(request)
            except (TypeError, ValueError) as exc:
                # A value the provider's payload holds cannot be encoded. In a bulk, the
                # engine splits it to find the contact that holds it; alone, it fails.
                message = f"{label}: the request could not be encoded ({exc})"
                if len(request.contacts) > 1:
                    raise BatchRefused(message) from None
                raise RequestFailed(message, retryable=False) from None
            try:
                async with asyncio.timeout(budget.attempt_timeout()):
                    response = self._scrubbed(built, await self._wire.send(built))
            except (httpx.TransportError, TimeoutError) as exc:
                delay = self._after_transport_error(exc, request, run, budget, attempts, applied)
                applied = applied or (
                    classify_exception(exc).maybe_applied and not request.is_read_only
                )
                await self._sleep(delay)
                continue
            self.breaker.record_response()
            if run is not None and not self.provider.not_applied(response):
                run.note_unsafe(request)
            if self.provider.is_auth_failure(response):
                self.auth_refused = (
                    f"{self.provider.name} refused the credentials of tenant "
                    f"{self.tenant.name!r} (HTTP {response.status_code}); "
                    + self.provider.auth_failure_hint(response)
                )
                raise RequestFailed(
                    self.auth_refused
                    + (
                        "; an earlier attempt lost its answer and may have been applied"
                        if applied
                        else ""
                    ),
                    status_code=response.status_code,
                    retryable=False,
                    maybe_applied=applied,
                    code=None if applied else ErrorCode.AUTH_FAILED,
                )
            if not self.provider.is_retryable(response):
                return response
            if not request.safe_to_resend and not self.provider.not_applied(response):
                raise RequestFailed(
                    f"{label} answered HTTP {response.status_code} after {attempts} "
                    "attempt(s); it may have been applied",
                    status_code=response.status_code,
                    retryable=False,
                    maybe_applied=True,
                )
            wait = budget.next_delay(Failure.from_response(response))
            if wait is None:
                raise RequestFailed(
                    f"{label} answered HTTP {response.status_code} after {attempts} attempt(s)"
                    + (
                        "; an earlier attempt lost its answer and may have been applied"
                        if applied
                        else ""
                    ),
                    status_code=response.status_code,
                    maybe_applied=applied,
                )
            self.log.info(
                "%s: HTTP %d; retry %d in %.2fs",
                label,
                response.status_code,
                attempts,
                wait,
                indexes=request.contacts,
            )
            await self._sleep(wait)

    async def drive(
        self, stepper: FlowStepper, run: FlowRun, report: Callable[[Outcome], None]
    ) -> Done:
        step = stepper.start()
        while not isinstance(step, Done):
            if isinstance(step, Outcome):
                report(step)
                step = stepper.send(None)
            elif isinstance(step, Sleep):
                await self._sleep(step.seconds)
                step = stepper.send(None)
            elif isinstance(step, Recall):
                step = stepper.send(await run.recall(step))
            else:
                try:
                    response = await self.send(step, run)
                except RequestFailed as exc:
                    step = stepper.throw(exc)
                else:
                    step = stepper.send(response)
        return step

    # --- read-only flows (discovery, credential checks) --------------------------------

    async def read(self, flow: Generator[Step, Response | None, object]) -> object:
        """Run a read-only flow to its return value. A request that cannot be completed
        (refused credentials included) raises :class:`RequestFailed`."""
        step = next(flow)
        while True:
            try:
                if isinstance(step, Sleep):
                    await self._sleep(step.seconds)
                    step = flow.send(None)
                    continue
                if isinstance(step, Recall):
                    step = flow.send(NOTHING_RECALLED)
                    continue
                if not step.is_read_only:
                    raise RequestFailed(f"{_label(step)} is not read-only", retryable=False)
                try:
                    response = await self.send(step)
                except RequestFailed as exc:
                    step = flow.throw(exc)
                else:
                    step = flow.send(response)
            except StopIteration as stop:
                return stop.value

    # --- setup ------------------------------------------------------------------------

    async def plan_setup(self) -> SetupResult:
        """Run the setup flow for ``plan``: read-only requests only."""
        run = FlowRun([], read_only=True)
        error = await self.ensure_setup(run)
        return SetupResult(tuple(run.log), error)

    async def ensure_setup(self, run: FlowRun | None = None) -> OutcomeError | None:
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
                done = await self.drive(
                    FlowStepper(self.provider, [], flow), run or FlowRun([]), lambda _: None
                )
                if done.error is not None:
                    refused = done.error.code == ErrorCode.AUTH_FAILED
                    return OutcomeError(
                        ErrorCode.AUTH_FAILED if refused else ErrorCode.SETUP_FAILED,
                        f"{self.provider.name} setup did not complete: {done.error.message}",
                        status_code=done.error.status_code,
                        retryable=not refused,
                    )
            self._setup_ok = True
            return None

    # --- running ----------------------------------------------------------------------

    def execute(
        self,
        inputs: Iterable[ContactInput] | AsyncIterable[ContactInput],
        summary: Summary,
        incremental: Incremental | None = None,
    ) -> Execution:
        """A run over ``inputs``: iterate ``.outcomes()`` to drive it. A new run tries
        again: credentials may have been fixed, the platform be back."""
        self.auth_refused = None
        self.reset_breaker()
        return Execution(self, summary, inputs, scrub=self.scrubber.scrub, incremental=incremental)

    def reset_breaker(self) -> None:
        self.breaker = Breaker(self.settings.breaker_after, self._clock)
