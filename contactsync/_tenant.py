"""A resolved tenant and its HTTP settings: what providers and the engine read.

Kept apart from the config loader (``_config``), which needs the provider registry,
so that the provider interface can name ``Tenant`` without an import circle.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import attrs

from ._field_types import FieldType

EMULATOR = "emulator"
"""The ``base_url`` of a tenant served by its provider's in-process emulator."""

OnUnsupported: TypeAlias = Literal["error", "warn"]
SyncMode: TypeAlias = Literal["upsert", "create_only", "update_only"]
SYNC_MODES: tuple[SyncMode, ...] = ("upsert", "create_only", "update_only")


class ValueProblem(ValueError):
    """A value error whose message is meant for the user as it is.

    ``key`` names the attribute at fault when the check spans a whole table.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


_FLOAT_SETTINGS = (
    "timeout",
    "attempt_timeout",
    "retry_for",
    "breaker_after",
    "requests_per_second",
    "backoff_base",
    "backoff_max",
    "batch_linger",
)


@attrs.frozen
class HttpSettings:
    timeout: float = 30.0
    """Seconds for each phase of an attempt (connect, write, read), each."""
    attempt_timeout: float = 60.0
    """Overall deadline of one attempt, connect to last byte: a server trickling
    bytes cannot hold a request longer than this."""
    retry_for: float = 300.0
    """Total seconds one request may take, attempts and waits included, before the
    engine gives up on it (429, 5xx and transport errors are retried until then)."""
    max_retries: int | None = None
    """An extra cap on resends after the first attempt; unset: only ``retry_for`` counts."""
    breaker_after: float = 60.0
    """Stop sending to a platform once every attempt for this many seconds has
    failed with a transport error (nothing succeeded in between)."""
    concurrency: int | None = None
    """Requests in flight at once; the provider's default when unset."""
    requests_per_second: float | None = None
    """Lower the provider's documented rate limit (it can never be raised above it)."""
    backoff_base: float = 0.5
    """First backoff ceiling in seconds; it doubles per retry (full jitter below it)."""
    backoff_max: float = 30.0
    """Largest backoff ceiling in seconds."""
    batch_linger: float = 1.0
    """Seconds an open batch waits to fill before it is sent anyway (bulk platforms)."""

    def __attrs_post_init__(self) -> None:
        for name in _FLOAT_SETTINGS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueProblem("must be a finite number", name)
        for name in ("timeout", "backoff_base", "backoff_max", "retry_for", "batch_linger"):
            if getattr(self, name) < 0:
                raise ValueProblem("must not be negative", name)
        for name in ("attempt_timeout", "breaker_after"):
            if getattr(self, name) <= 0:
                raise ValueProblem("must be positive", name)
        if self.max_retries is not None and self.max_retries < 0:
            raise ValueProblem("must not be negative", "max_retries")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueProblem("must be at least 1", "concurrency")
        if self.requests_per_second is not None and self.requests_per_second <= 0:
            raise ValueProblem("must be positive", "requests_per_second")


@attrs.frozen
class Tenant:
    """A tenant ready to use: what providers and the engine read."""

    name: str
    provider: str
    base_url: str
    default_phone_region: str | None
    on_unsupported: OnUnsupported
    credentials: Any = attrs.field(repr=False)
    options: Any
    """The provider's ``options_type``, structured from the tenant's ``options`` table."""
    custom_fields: Mapping[str, str | int]
    groups: Mapping[str, str | int]
    http: HttpSettings
    sync_mode: SyncMode = "upsert"
    """``upsert`` writes every contact; ``create_only`` never touches one that exists;
    ``update_only`` never creates one. Contacts left alone are ``skipped``."""
    custom_field_types: Mapping[str, FieldType] = attrs.field(factory=dict)
    """Declared types of custom fields (``{ id = ..., type = ... }``): values are
    converted to them (or rejected) before the provider maps a contact."""
    account: str | None = None
    """The tenant's own name for its platform account. With a state store, a new key
    for the same host keeps the stored remote ids only when this name is unchanged and
    one stored id reads back with its stored external id (docs/incremental.md)."""

    @property
    def settings(self) -> Any:
        """The old name of :attr:`options` (kept for one release)."""
        warnings.warn(
            "Tenant.settings is deprecated; use Tenant.options", DeprecationWarning, stacklevel=2
        )
        return self.options

    @property
    def uses_emulator(self) -> bool:
        return self.base_url == EMULATOR
