"""Incremental sync: what a run asks the state store, and what it tells it.

Before a contact is scheduled, the run looks its identity up in the store: when the
platform already confirmed exactly this payload (same fingerprint, same mapping),
the contact is ``unchanged`` and costs no request. Equal raw input (same raw hash,
same mapping) is recognised before the contact is even validated or mapped. The
rest is marked in flight before it is sent, and confirmed (or recorded as failed)
once its outcome is known, in small transactions.

A row is checked against the store only when no earlier row for the same person is
still pending in the run: the state would not yet say what that earlier row left.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._outcome import Outcome, Status
from ._provider import Prepared, Provider
from ._state import Confirmed, FailedEntry, StateRecord, fingerprint

if TYPE_CHECKING:
    from ._state import StateStore

FLUSH_EVERY = 500
"""Outcomes buffered before they are written to the store (one transaction)."""


def mapping_fingerprint(provider: Provider[Any]) -> str:
    """What makes the same contact map to a different payload: a change resends all."""
    tenant = provider.tenant
    return fingerprint(
        {
            "provider": provider.name,
            # The key keeps its old name: renaming it would change every stored hash.
            "settings": _plain(tenant.options),
            "custom_fields": dict(tenant.custom_fields),
            "groups": dict(tenant.groups),
            "default_phone_region": tenant.default_phone_region,
            "on_unsupported": tenant.on_unsupported,
            "base_url": tenant.base_url,
        }
    )


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=True)
    return value


def payload_fingerprint(payload: Any) -> str:
    return fingerprint(_plain(payload))


def state_key(item: Prepared[Any]) -> str | None:
    """The identity the store keys a contact by: its external id when it has one
    (known before mapping, for the raw fast path), else its first identity key."""
    for key in item.identity:
        if key.startswith("external_id="):
            return key
    return item.identity[0] if item.identity else None


def raw_key(record: object) -> str | None:
    """The state key of a raw input record, when it names an external id."""
    if not isinstance(record, Mapping):
        return None
    value = record.get("external_id")
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return "external_id=" + str(value).strip().casefold()


@attrs.define
class _Pending:
    key: str
    fingerprint: str
    raw: str | None


class Incremental:
    """One run's use of the store (calls go to a worker thread: the store blocks)."""

    def __init__(self, store: StateStore, provider: Provider[Any], *, full: bool) -> None:
        self.store = store
        self.tenant = provider.tenant.name
        self.mapping = mapping_fingerprint(provider)
        self.full = full
        self.run_id: str | None = None
        self._pending: dict[int, _Pending] = {}
        self._confirmed: list[Confirmed] = []
        self._failed: list[FailedEntry] = []
        self._recent: Counter[str] = Counter()
        """Keys sent by this run whose outcome the store does not hold yet: the store
        cannot say what the platform holds for them."""

    async def begin(self) -> None:
        self.run_id = await asyncio.to_thread(
            self.store.begin_run, self.tenant, mapping_fingerprint=self.mapping
        )

    async def lookup(self, keys: list[str]) -> dict[str, StateRecord]:
        if self.full or not keys:
            return {}
        return await asyncio.to_thread(self.store.get_many, self.tenant, keys)

    def recent(self, key: str) -> bool:
        return key in self._recent

    def raw_unchanged(self, record: StateRecord | None, raw: str) -> bool:
        return record is not None and record.raw_is_current(raw, self.mapping)

    def unchanged(self, record: StateRecord | None, item: Prepared[Any]) -> tuple[bool, str]:
        print_ = payload_fingerprint(item.payload)
        return record is not None and record.is_current(print_, self.mapping), print_

    async def sending(self, items: list[tuple[Prepared[Any], str, str, str | None]]) -> None:
        """Mark ``(item, key, fingerprint, raw hash)`` in flight before they are sent."""
        for item, key, print_, raw in items:
            self._pending[item.index] = _Pending(key, print_, raw)
            self._recent[key] += 1
        if items:
            assert self.run_id is not None
            keys = [key for _, key, _, _ in items]
            await asyncio.to_thread(self.store.mark_in_flight, self.tenant, self.run_id, keys)

    def outcome(self, outcome: Outcome) -> None:
        """Note the final outcome of a contact this run sent."""
        pending = self._pending.pop(outcome.index, None)
        if pending is None:
            return
        if outcome.status in (Status.CREATED, Status.UPDATED, Status.UNCHANGED):
            self._confirmed.append(
                Confirmed(
                    pending.key,
                    pending.fingerprint,
                    self.mapping,
                    outcome.status.value,
                    outcome.remote_id,
                    pending.raw,
                )
            )
        else:
            code = outcome.error.code if outcome.error else None
            status = "rejected" if outcome.status is Status.REJECTED else "failed"
            self._failed.append(FailedEntry(pending.key, code, status))

    @property
    def due(self) -> bool:
        return len(self._confirmed) + len(self._failed) >= FLUSH_EVERY

    async def flush(self) -> None:
        confirmed, self._confirmed = self._confirmed, []
        failed, self._failed = self._failed, []
        if confirmed:
            await asyncio.to_thread(self.store.confirm, self.tenant, confirmed)
        if failed:
            await asyncio.to_thread(self.store.record_failure, self.tenant, failed)
        for key in [entry.key for entry in confirmed] + [entry.key for entry in failed]:
            self._recent[key] -= 1
            if self._recent[key] <= 0:
                del self._recent[key]

    async def finish(self, counts: Mapping[str, int]) -> None:
        await self.flush()
        if self.run_id is not None:
            await asyncio.to_thread(self.store.finish_run, self.run_id, counts)
