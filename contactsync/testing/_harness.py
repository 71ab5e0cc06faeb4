"""What the pytest fixtures hand out: clients on emulators or on cassettes."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._client import AsyncClient, Client
from .._config import Config, load_config
from .._emulator import EmulatorApp, Faults
from .._registry import Registry, default_registry
from ._vcr import make_vcr

ConfigLike = Config | str | os.PathLike[str] | Mapping[str, Any]


def _quick_sleep(seconds: float) -> None:
    # Retries and polls still pause, briefly: tests stay fast and emulators' rate
    # limits still see requests spread out.
    time.sleep(min(seconds, 0.01))


async def _quick_async_sleep(seconds: float) -> None:
    import asyncio  # noqa: PLC0415 - only async tests need it

    await asyncio.sleep(min(seconds, 0.01))


class Harness:
    """One test's emulators (one per config and tenant), cassettes and clients.

    Everything it opened is closed by :meth:`close` (the fixture does it).
    """

    def __init__(
        self,
        cassette_dir: Path,
        *,
        record: bool = False,
        registry: Registry | None = None,
    ) -> None:
        self.cassette_dir = cassette_dir
        self.record = record
        self.registry = registry or default_registry
        self._emulators: dict[tuple[str, str], EmulatorApp] = {}
        self._stack = contextlib.ExitStack()

    def _config(self, config: ConfigLike) -> tuple[Config, str]:
        if isinstance(config, Config):
            return config, f"config@{id(config)}"
        if isinstance(config, Mapping):
            return load_config(config), f"mapping@{id(config)}"
        return load_config(config), str(Path(config).resolve())

    def emulator(
        self, config: ConfigLike, tenant: str, faults: Faults | None = None
    ) -> EmulatorApp:
        """The emulator standing in for ``tenant``'s platform (created on first use)."""
        loaded, key = self._config(config)
        if (key, tenant) not in self._emulators:
            resolved = loaded.tenant(tenant, self.registry)
            provider = self.registry.get(resolved.provider)
            self._emulators[key, tenant] = EmulatorApp(provider.create_emulator(resolved), faults)
        return self._emulators[key, tenant]

    def client(self, config: ConfigLike, tenant: str) -> Client:
        """A client for ``tenant`` whose every request goes to its in-process emulator."""
        loaded, _ = self._config(config)
        client = Client(
            loaded,
            tenant,
            registry=self.registry,
            emulator=self.emulator(config, tenant),
            sleep=_quick_sleep,
        )
        return self._stack.enter_context(client)

    def async_client(self, config: ConfigLike, tenant: str) -> AsyncClient:
        """The async counterpart of :meth:`client`; use it as ``async with``."""
        loaded, _ = self._config(config)
        return AsyncClient(
            loaded,
            tenant,
            registry=self.registry,
            emulator=self.emulator(config, tenant),
            sleep=_quick_async_sleep,
        )

    def cassette(self, config: ConfigLike, tenant: str, name: str) -> Client:
        """A client for ``tenant`` that replays ``cassettes/NAME.yaml`` (never the network).

        With recording on (``--contactsync-record``), it records from the emulator instead.
        """
        recorder = make_vcr(
            self.cassette_dir, self.registry, record_mode="all" if self.record else "none"
        )
        self._stack.enter_context(recorder.use_cassette(f"{name}.yaml"))
        loaded, _ = self._config(config)
        emulator = self.emulator(config, tenant) if self.record else None
        client = Client(
            loaded, tenant, registry=self.registry, emulator=emulator, sleep=_quick_sleep
        )
        return self._stack.enter_context(client)

    def close(self) -> None:
        self._stack.close()
