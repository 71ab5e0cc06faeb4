"""The public entry points: :class:`Client` and :class:`AsyncClient`."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs
import httpx

from ._config import Config, load_config
from ._discovery import NotListed, RemoteField, RemoteGroup
from ._emulator import EmulatorApp, EmulatorTransport, Faults
from ._engine import Engine, SetupResult, effective_concurrency
from ._errors import ClientClosed, ConfigError
from ._loop import (
    LoopThread,
    SyncIterator,
    ThreadedTransport,
    blocking_sleep,
    network_transport,
)
from ._outcome import Outcome, Summary
from ._pipeline import ContactInput, Pipeline
from ._plan import PlannedRequest, plan
from ._provider import Provider, Response, Step
from ._registry import Registry, default_registry
from ._tenant import SYNC_MODES, SyncMode, Tenant

if TYPE_CHECKING:
    from ._incremental import Incremental
    from ._state import StateStore

ConfigSource = Config | str | os.PathLike[str] | Mapping[str, Any]

_EMULATOR_HOST = "http://emulator.invalid"


OnOutcome = Callable[[Outcome], object]
"""Called with each outcome as the run hands it out (a progress bar, a metrics counter,
a log line). For :class:`AsyncClient` it may also return an awaitable, which is awaited."""


class Run(Iterator[Outcome]):
    """Outcomes of an ``upsert_many``, streamed as contacts finish (not in input order;
    each carries its input ``index``). Nothing is sent until it is iterated.

    ``summary`` holds the running totals.
    """

    def __init__(
        self,
        outcomes: Iterator[Outcome],
        summary: Summary,
        cancel: Callable[[bool], None] | None = None,
        rest: Callable[[], Iterator[Any]] | None = None,
        on_outcome: OnOutcome | None = None,
        closed: Callable[[], bool] | None = None,
        untaken: Callable[[], Iterator[Outcome]] | None = None,
    ) -> None:
        self._outcomes = outcomes
        self._closed = closed
        self.summary = summary
        self._cancel = cancel
        self._rest = rest
        self._on_outcome = on_outcome
        self._untaken = untaken

    def rest(self) -> Iterator[Any]:
        """After a cancelled run has ended: the input it never took, in order (a sync
        input only, and not what a reader still blocked on a slow input holds)."""
        return iter(()) if self._rest is None else self._rest()

    def untaken(self) -> Iterator[Outcome]:
        """After a cancelled run has ended: an outcome for each input it never took
        (:meth:`rest`), in order, counted in ``summary``: ``failed`` (``interrupted``,
        retryable, with its ``order`` in a run with a state store), or ``skipped``
        (``superseded``) for a row that is not its person's last when the input was read
        ahead. Use either this or :meth:`rest`, once."""
        if self._untaken is not None:
            return self._untaken()
        return iter(())

    def cancel(self, force: bool = False) -> None:
        """Stop taking input. Keep iterating: requests in flight finish and every
        contact not yet sent comes out ``failed`` with code ``interrupted``. With
        ``force``, stop waiting for requests in flight too (their contacts come out
        ``outcome_unknown``). Safe to call from any thread or a signal handler."""
        if self._cancel is not None:
            self._cancel(force)

    def __next__(self) -> Outcome:
        if self._closed is not None and self._closed():
            raise ClientClosed("Client")
        outcome = next(self._outcomes)
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome

    def drain(self) -> Summary:
        """Run to the end, keeping only the totals (``on_outcome`` still sees each)."""
        for _ in self:
            pass
        return self.summary

    def close(self) -> None:
        """Stop: flows in flight are cancelled, no more input is taken."""
        close = getattr(self._outcomes, "close", None)
        if close is not None:
            close()


class AsyncRun(AsyncIterator[Outcome]):
    """The async counterpart of :class:`Run`."""

    def __init__(
        self,
        outcomes: AsyncIterator[list[Outcome]],
        summary: Summary,
        cancel: Callable[[bool], None] | None = None,
        on_outcome: OnOutcome | None = None,
        closed: Callable[[], bool] | None = None,
    ) -> None:
        self._outcomes = outcomes
        self._closed = closed
        self._buffer: list[Outcome] = []
        self._position = 0
        self.summary = summary
        self._cancel = cancel
        self._on_outcome = on_outcome

    def cancel(self, force: bool = False) -> None:
        """See :meth:`Run.cancel` (call it from the loop the run runs on)."""
        if self._cancel is not None:
            self._cancel(force)

    async def __anext__(self) -> Outcome:
        if self._closed is not None and self._closed():
            # Its flows would send through a closed HTTP client: end them, send nothing.
            await self.aclose()
            raise ClientClosed("AsyncClient")
        while self._position >= len(self._buffer):
            self._buffer = await anext(self._outcomes)
            self._position = 0
        outcome = self._buffer[self._position]
        self._position += 1
        if self._on_outcome is not None:
            result = self._on_outcome(outcome)
            if inspect.isawaitable(result):
                await result
        return outcome

    async def drain(self) -> Summary:
        """Run to the end, keeping only the totals (``on_outcome`` still sees each)."""
        async for _ in self:
            pass
        return self.summary

    async def aclose(self) -> None:
        aclose = getattr(self._outcomes, "aclose", None)
        if aclose is not None:
            await aclose()


_READ_FLOWS = {
    "fields": ("list_fields", "custom fields"),
    "groups": ("list_groups", "groups"),
    "credentials": ("check_credentials", "a read-only call to check credentials"),
}


class _Base:
    provider: Provider[Any]

    def _read_flow(self, what: str) -> Generator[Step, Response | None, object]:
        method, words = _READ_FLOWS[what]
        flow = getattr(self.provider, method)()
        if flow is None:
            raise NotListed(f"{self.provider.name}: the platform documents no listing of {words}")
        return flow  # type: ignore[no-any-return]

    def __init__(
        self,
        config: ConfigSource,
        tenant: str,
        *,
        registry: Registry | None,
        faults: Faults | None,
        emulator: EmulatorApp | None,
        state: str | StateStore | None = None,
        limiter_storage: str | None = None,
        sync_mode: SyncMode | None = None,
        tenant_lock: bool = True,
    ) -> None:
        self._closed = False
        self._tenant_lock = tenant_lock
        loaded = config if isinstance(config, Config) else load_config(config)
        self.state: StateStore | None = None
        self._owns_state = False
        if isinstance(state, str) or (state is None and loaded.state is not None):
            from ._state import open_store  # noqa: PLC0415 - SQLAlchemy only when used

            url = state if isinstance(state, str) else loaded.state.url.reveal()  # type: ignore[union-attr]
            self.state, self._owns_state = open_store(url), True
        elif state is not None:
            self.state = state
        if sync_mode is not None and tenant in loaded.tenants:
            if sync_mode not in SYNC_MODES:
                raise ConfigError("sync_mode", f"must be one of {', '.join(SYNC_MODES)}")
            # Given here, it replaces the tenant's own (checked when the tenant resolves).
            raw = attrs.evolve(loaded.tenants[tenant], sync_mode=sync_mode)
            loaded = attrs.evolve(loaded, tenants={**loaded.tenants, tenant: raw})
        self.tenant: Tenant = loaded.tenant(tenant, registry or default_registry)
        provider_cls = (registry or default_registry).get(self.tenant.provider)
        self.provider: Provider[Any] = provider_cls(self.tenant)
        self.emulator_app: EmulatorApp | None = emulator
        if emulator is None and self.tenant.uses_emulator:
            self.emulator_app = EmulatorApp(provider_cls.create_emulator(self.tenant), faults)
        self.base_url = (
            (provider_cls.base_url_for(self.tenant.options) or _EMULATOR_HOST)
            if self.tenant.uses_emulator
            else self.tenant.base_url
        )
        self._pipeline = Pipeline(self.tenant, self.provider)
        # With a [scale] table every process running this tenant shares one window.
        self._limiter_storage = (
            limiter_storage
            if limiter_storage is not None
            else loaded.scale.redis_url.reveal()
            if loaded.scale is not None
            else "memory://"
        )

    @property
    def closed(self) -> bool:
        """Whether ``close()``/``aclose()`` ran (then every call raises :class:`ClientClosed`)."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed(type(self).__name__)

    def _transport(
        self, transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncBaseTransport:
        """What the engine sends through: the given transport, the emulator, or the
        network. Both clients reach the network the same way: httpx's sync transport,
        each request in a worker thread (one per flow that may run at once, each with
        its own connections: see :class:`ThreadedTransport`). Against
        plain HTTP/1.1 servers it measured two to three times faster than httpx's
        asyncio transport, and it leaves an async caller's loop free for the engine."""
        if transport is None and self.emulator_app is not None:
            transport = EmulatorTransport(self.emulator_app)
        workers = effective_concurrency(self.tenant, self.provider)
        if transport is None:  # a pool per thread
            return ThreadedTransport(network_transport(self.base_url), workers)
        if isinstance(transport, httpx.AsyncBaseTransport):
            return transport
        return ThreadedTransport(transport, workers)

    def _httpx_options(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "auth": self.provider.auth(),
            "timeout": httpx.Timeout(self.tenant.http.timeout),
            "follow_redirects": False,
            "headers": {"User-Agent": "contactsync"},
        }

    def _incremental(self, full: bool, lock_wait: float | None) -> Incremental | None:
        if self.state is None:
            return None
        from ._incremental import Incremental  # noqa: PLC0415

        if lock_wait is not None and lock_wait < 0:
            raise ValueError("lock_wait must not be negative")
        return Incremental(
            self.state, self.provider, full=full, lock=self._tenant_lock, lock_wait=lock_wait
        )

    def _close_state(self) -> None:
        if self.state is not None and self._owns_state:
            self.state.close()

    def _planned(
        self, contacts: Iterable[ContactInput], setup: SetupResult
    ) -> Iterator[PlannedRequest | Outcome]:
        judge = None
        if self.state is not None:
            from ._incremental import PlanJudge  # noqa: PLC0415
            from ._readahead import last_rows_only  # noqa: PLC0415

            judge = PlanJudge(
                self.state, self.provider, last_rows_only(self.provider, contacts) or ()
            )
        return plan(self._pipeline, self.base_url, contacts, setup, judge)


class Client(_Base):
    """Upsert contacts for one tenant. Use as a context manager, or call :meth:`close`.

    ``transport`` replaces the network; ``emulator`` sends every request to that
    emulator instead (whatever the tenant's base_url); ``sleep`` replaces waiting
    between retries and polls (tests; it is called in a worker thread) and ``clock``
    the clock retry budgets and the circuit breaker read (tests pair the two). Given a
    ``clock``, the rate limiter's windows read it too and wait with ``sleep``, so a test
    runs rate limits in simulated time (a process-local ``limiter_storage`` only).

    ``tenant_lock=False`` makes runs with a state store skip the tenant lock: only for
    code running under a run that holds it (the workers of a distributed run).

    The client runs the same asyncio engine as :class:`AsyncClient`, on an event loop
    of its own in a background thread; its methods may be called from any thread.
    """

    def __init__(
        self,
        config: ConfigSource,
        tenant: str,
        *,
        registry: Registry | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        faults: Faults | None = None,
        emulator: EmulatorApp | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        state: str | StateStore | None = None,
        limiter_storage: str | None = None,
        sync_mode: SyncMode | None = None,
        tenant_lock: bool = True,
    ) -> None:
        super().__init__(
            config,
            tenant,
            registry=registry,
            faults=faults,
            emulator=emulator,
            state=state,
            limiter_storage=limiter_storage,
            sync_mode=sync_mode,
            tenant_lock=tenant_lock,
        )
        self._loop = LoopThread()
        through = self._transport(transport)
        self._http = httpx.AsyncClient(transport=through, **self._httpx_options())
        self._engine = Engine(
            self.tenant,
            self.provider,
            self._http,
            transport=through,
            sleep=asyncio.sleep if sleep is None else blocking_sleep(sleep),
            clock=clock,
            limiter_storage=self._limiter_storage,
        )

    @property
    def engine(self) -> Engine:
        return self._engine

    def upsert(self, contact: ContactInput) -> Outcome:
        """Create or update one contact."""
        self._check_open()
        (outcome,) = self.upsert_many([contact])
        return outcome

    def upsert_many(
        self,
        contacts: Iterable[ContactInput],
        *,
        full: bool = False,
        on_outcome: OnOutcome | None = None,
        lock_wait: float | None = 0.0,
    ) -> Run:
        """Stream ``contacts`` (any iterable) through the platform; see :class:`Run`.

        With a state store, contacts the platform already holds as given are
        ``unchanged`` and cost no request; ``full=True`` sends every one anyway. A
        ``list`` or ``tuple`` (or an input file the CLI names) is then read ahead: only
        each person's last row is written, the earlier ones are ``skipped``
        (``superseded``); a one-shot iterator goes in input order.
        A run with a store holds the tenant's lock on it: while another run holds it,
        the first step of this one raises :class:`TenantLocked` (naming the holder's
        run id) after waiting ``lock_wait`` seconds (``None``: as long as it takes).
        ``on_outcome`` is called with each outcome, in the iterating thread, just
        before the run hands it out (or while ``drain`` runs); what it raises stops
        the iteration like an exception in the loop's body would.

        Raises :class:`ClientClosed` once the client is closed (and so does iterating
        a run taken before)."""
        self._check_open()
        summary = Summary()
        execution = self._engine.execute(contacts, summary, self._incremental(full, lock_wait))
        loop = self._loop.loop

        def cancel(force: bool) -> None:
            with contextlib.suppress(RuntimeError):  # the client is closed: nothing runs
                loop.call_soon_threadsafe(execution.cancel, force)

        outcomes = SyncIterator(self._loop, execution.outcomes())
        return Run(
            outcomes,
            summary,
            cancel,
            execution.rest,
            on_outcome,
            lambda: self._closed,
            untaken=execution.untaken,
        )

    def plan(self, contacts: Iterable[ContactInput]) -> Iterator[PlannedRequest | Outcome]:
        """The requests an upsert would send (and rejected contacts). Sends nothing but
        the provider's read-only setup requests (shown first, ``sent=True``)."""
        self._check_open()
        return self._planned(contacts, self._loop.run(self._engine.plan_setup()))

    def list_fields(self) -> list[RemoteField]:
        """The account's custom fields (read-only requests). :class:`NotListed` when
        the platform documents no listing; :class:`RequestFailed` when it fails."""
        self._check_open()
        found = self._loop.run(self._engine.read(self._read_flow("fields")))
        return [item for item in found if isinstance(item, RemoteField)]  # type: ignore[attr-defined]

    def list_groups(self) -> list[RemoteGroup]:
        """The account's groups, lists or segments; see :meth:`list_fields`."""
        self._check_open()
        found = self._loop.run(self._engine.read(self._read_flow("groups")))
        return [item for item in found if isinstance(item, RemoteGroup)]  # type: ignore[attr-defined]

    def check_credentials(self) -> None:
        """Make the provider's cheapest authenticated call; :class:`RequestFailed`
        (code ``auth_failed`` for refused credentials) when it does not succeed."""
        self._check_open()
        self._loop.run(self._engine.read(self._read_flow("credentials")))

    def close(self) -> None:
        """Close connections, the loop and an owned state store. Calling it again does
        nothing; any other call afterwards raises :class:`ClientClosed`."""
        if self._closed:
            return
        self._closed = True
        if not self._loop.loop.is_closed():
            self._loop.run(self._http.aclose())
            self._loop.run(self._engine.limiter.aclose())
        self._loop.close()
        self._close_state()

    def __enter__(self) -> Self:
        self._check_open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Base):
    """The asyncio counterpart of :class:`Client`.

    ``transport`` may be an async httpx transport, or a sync one (each request then runs
    in a worker thread, as the network does by default). ``sleep`` and ``clock`` as in
    :class:`Client`."""

    def __init__(
        self,
        config: ConfigSource,
        tenant: str,
        *,
        registry: Registry | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        faults: Faults | None = None,
        emulator: EmulatorApp | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        state: str | StateStore | None = None,
        limiter_storage: str | None = None,
        sync_mode: SyncMode | None = None,
        tenant_lock: bool = True,
    ) -> None:
        super().__init__(
            config,
            tenant,
            registry=registry,
            faults=faults,
            emulator=emulator,
            state=state,
            limiter_storage=limiter_storage,
            sync_mode=sync_mode,
            tenant_lock=tenant_lock,
        )
        through = self._transport(transport)
        self._http = httpx.AsyncClient(transport=through, **self._httpx_options())
        self._engine = Engine(
            self.tenant,
            self.provider,
            self._http,
            transport=through,
            sleep=sleep,
            clock=clock,
            limiter_storage=self._limiter_storage,
        )

    @property
    def engine(self) -> Engine:
        return self._engine

    async def upsert(self, contact: ContactInput) -> Outcome:
        """Create or update one contact."""
        self._check_open()
        (outcome,) = [o async for o in self.upsert_many([contact])]
        return outcome

    def upsert_many(
        self,
        contacts: Iterable[ContactInput] | AsyncIterable[ContactInput],
        *,
        full: bool = False,
        on_outcome: OnOutcome | None = None,
        lock_wait: float | None = 0.0,
    ) -> AsyncRun:
        """See :meth:`Client.upsert_many`; ``on_outcome`` may be a coroutine function."""
        self._check_open()
        summary = Summary()
        execution = self._engine.execute(contacts, summary, self._incremental(full, lock_wait))
        return AsyncRun(
            execution.outcomes(), summary, execution.cancel, on_outcome, lambda: self._closed
        )

    async def plan(self, contacts: Iterable[ContactInput]) -> list[PlannedRequest | Outcome]:
        """See :meth:`Client.plan`."""
        self._check_open()
        return list(self._planned(contacts, await self._engine.plan_setup()))

    async def aclose(self) -> None:
        """See :meth:`Client.close`."""
        if self._closed:
            return
        self._closed = True
        await self._http.aclose()
        await self._engine.limiter.aclose()
        self._close_state()

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
