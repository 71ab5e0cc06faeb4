"""The public entry points: :class:`Client` and :class:`AsyncClient`."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from types import TracebackType
from typing import Any, Self

import httpx

from ._config import Config, Tenant, load_config
from ._emulator import EmulatorApp, EmulatorTransport, Faults
from ._engine import AsyncEngine, SyncEngine
from ._outcome import Outcome, Summary
from ._pipeline import ContactInput, Pipeline
from ._plan import PlannedRequest, plan
from ._provider import Provider
from ._registry import Registry, default_registry

ConfigSource = Config | str | os.PathLike[str] | Mapping[str, Any]

_EMULATOR_HOST = "http://emulator.invalid"


class Run(Iterator[Outcome]):
    """Outcomes of an ``upsert_many``, streamed as contacts finish (not in input order;
    each carries its input ``index``). Nothing is sent until it is iterated.

    ``summary`` holds the running totals.
    """

    def __init__(self, outcomes: Iterator[Outcome], summary: Summary) -> None:
        self._outcomes = outcomes
        self.summary = summary

    def __next__(self) -> Outcome:
        return next(self._outcomes)

    def drain(self) -> Summary:
        """Run to the end, keeping only the totals."""
        for _ in self._outcomes:
            pass
        return self.summary


class AsyncRun(AsyncIterator[Outcome]):
    """The async counterpart of :class:`Run`."""

    def __init__(self, outcomes: AsyncIterator[Outcome], summary: Summary) -> None:
        self._outcomes = outcomes
        self.summary = summary

    async def __anext__(self) -> Outcome:
        return await self._outcomes.__anext__()

    async def drain(self) -> Summary:
        async for _ in self._outcomes:
            pass
        return self.summary


class _Base:
    def __init__(
        self,
        config: ConfigSource,
        tenant: str,
        *,
        registry: Registry | None,
        faults: Faults | None,
        emulator: EmulatorApp | None,
    ) -> None:
        loaded = config if isinstance(config, Config) else load_config(config)
        self.tenant: Tenant = loaded.tenant(tenant, registry or default_registry)
        provider_cls = (registry or default_registry).get(self.tenant.provider)
        self.provider: Provider[Any] = provider_cls(self.tenant)
        self.emulator_app: EmulatorApp | None = emulator
        if emulator is None and self.tenant.uses_emulator:
            self.emulator_app = EmulatorApp(provider_cls.create_emulator(self.tenant), faults)
        self.base_url = (
            (provider_cls.base_url_for(self.tenant.settings) or _EMULATOR_HOST)
            if self.tenant.uses_emulator
            else self.tenant.base_url
        )
        self._pipeline = Pipeline(self.tenant, self.provider)

    def _httpx_options(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "auth": self.provider.auth(),
            "timeout": httpx.Timeout(self.tenant.http.timeout),
            "follow_redirects": False,
            "headers": {"User-Agent": "contactsync"},
        }

    def plan(self, contacts: Iterable[ContactInput]) -> Iterator[PlannedRequest | Outcome]:
        """The requests an upsert would send (and rejected contacts); sends nothing."""
        return plan(self._pipeline, self.base_url, contacts)


class Client(_Base):
    """Upsert contacts for one tenant. Use as a context manager, or call :meth:`close`.

    ``transport`` replaces the network; ``emulator`` sends every request to that
    emulator instead (whatever the tenant's base_url); ``sleep`` replaces waiting
    between retries and polls (tests).
    """

    def __init__(
        self,
        config: ConfigSource,
        tenant: str,
        *,
        registry: Registry | None = None,
        transport: httpx.BaseTransport | None = None,
        faults: Faults | None = None,
        emulator: EmulatorApp | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(config, tenant, registry=registry, faults=faults, emulator=emulator)
        if transport is None and self.emulator_app is not None:
            transport = EmulatorTransport(self.emulator_app)
        self._http = httpx.Client(transport=transport, **self._httpx_options())
        self._engine = SyncEngine(self.tenant, self.provider, self._http, sleep=sleep)

    def upsert(self, contact: ContactInput) -> Outcome:
        """Create or update one contact."""
        (outcome,) = self.upsert_many([contact])
        return outcome

    def upsert_many(self, contacts: Iterable[ContactInput]) -> Run:
        """Stream ``contacts`` (any iterable) through the platform; see :class:`Run`."""
        summary = Summary()
        return Run(self._engine.run(contacts, summary), summary)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Base):
    """The asyncio counterpart of :class:`Client`."""

    def __init__(
        self,
        config: ConfigSource,
        tenant: str,
        *,
        registry: Registry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        faults: Faults | None = None,
        emulator: EmulatorApp | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(config, tenant, registry=registry, faults=faults, emulator=emulator)
        if transport is None and self.emulator_app is not None:
            transport = EmulatorTransport(self.emulator_app)
        self._http = httpx.AsyncClient(transport=transport, **self._httpx_options())
        self._engine = AsyncEngine(self.tenant, self.provider, self._http, sleep=sleep)

    async def upsert(self, contact: ContactInput) -> Outcome:
        (outcome,) = [o async for o in self.upsert_many([contact])]
        return outcome

    def upsert_many(
        self, contacts: Iterable[ContactInput] | AsyncIterable[ContactInput]
    ) -> AsyncRun:
        summary = Summary()
        return AsyncRun(self._engine.run(contacts, summary), summary)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
