"""Finding providers: installed distributions' entry points, plus explicit registration."""

from __future__ import annotations

import threading
from typing import Any

import attrs

from ._errors import ProviderNotFound
from ._provider import Provider

ENTRY_POINT_GROUP = "contactsync.providers"

ProviderClass = type[Provider[Any]]


@attrs.frozen
class BrokenProvider:
    """An entry point that failed to load, kept so ``contactsync providers`` can say why."""

    name: str
    distribution: str | None
    error: str


class Registry:
    """Provider classes by name. Explicit registrations win over entry points."""

    def __init__(self, *, discover: bool = True) -> None:
        self._discover = discover
        self._explicit: dict[str, ProviderClass] = {}
        self._found: dict[str, tuple[ProviderClass, str | None]] | None = None
        self._broken: list[BrokenProvider] = []
        self._lock = threading.Lock()

    def register(self, provider: ProviderClass) -> ProviderClass:
        """Register ``provider`` under its ``name`` (usable as a class decorator)."""
        if not provider.name:
            raise ValueError(f"{provider.__qualname__} has no name")
        self._explicit[provider.name] = provider
        return provider

    def unregister(self, name: str) -> None:
        self._explicit.pop(name, None)

    def _entry_points(self) -> dict[str, tuple[ProviderClass, str | None]]:
        with self._lock:
            if self._found is None:
                found: dict[str, tuple[ProviderClass, str | None]] = {}
                if self._discover:
                    # Imported here: importlib.metadata costs ~20 ms, paid only by a run
                    # that looks a provider up.
                    from importlib.metadata import entry_points  # noqa: PLC0415

                    for ep in entry_points(group=ENTRY_POINT_GROUP):
                        dist = ep.dist.name if ep.dist is not None else None
                        try:
                            cls = ep.load()
                        except Exception as exc:  # a broken plugin must not break the others
                            self._broken.append(BrokenProvider(ep.name, dist, repr(exc)))
                            continue
                        if not (isinstance(cls, type) and issubclass(cls, Provider)):
                            self._broken.append(
                                BrokenProvider(ep.name, dist, "entry point is not a Provider class")
                            )
                            continue
                        found[ep.name] = (cls, dist)
                self._found = found
            return self._found

    def get(self, name: str) -> ProviderClass:
        if name in self._explicit:
            return self._explicit[name]
        try:
            return self._entry_points()[name][0]
        except KeyError:
            known = ", ".join(sorted(self.names())) or "none"
            raise ProviderNotFound(
                "", f"no provider named {name!r} is installed (installed: {known})"
            ) from None

    def names(self) -> list[str]:
        return sorted(set(self._explicit) | set(self._entry_points()))

    def distribution(self, name: str) -> str | None:
        if name in self._explicit:
            return None
        entry = self._entry_points().get(name)
        return None if entry is None else entry[1]

    def broken(self) -> list[BrokenProvider]:
        self._entry_points()
        return list(self._broken)


default_registry = Registry()


def register(provider: ProviderClass) -> ProviderClass:
    """Register a provider class in the default registry."""
    return default_registry.register(provider)
