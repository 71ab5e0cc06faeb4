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
import functools
import unicodedata
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Container, Generator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._account import account_id, same_place
from ._errors import ContactsyncError
from ._outcome import Outcome, SkipReason, Status
from ._provider import Known, Prepared, Provider, Response, Step
from ._state import Confirmed, FailedEntry, StateRecord, fingerprint
from ._state._coarse import coarse_key

if TYPE_CHECKING:
    from ._logs import TenantLog
    from ._state import StateStore
    from ._state._lock import TenantLock

Reader = Callable[[Generator[Step, Response | None, object]], Awaitable[object]]
"""Runs a read-only flow to its value (``Engine.read``)."""

FLUSH_EVERY = 500
"""Outcomes buffered before they are written to the store (one transaction)."""


def mapping_fingerprint(provider: Provider[Any]) -> str:
    """What makes the same contact map to a different payload: a change resends all."""
    tenant = provider.tenant
    parts: dict[str, Any] = {
        "provider": provider.name,
        # The key keeps its old name: renaming it would change every stored hash.
        "settings": _plain(tenant.options),
        "custom_fields": dict(tenant.custom_fields),
        "groups": dict(tenant.groups),
        "default_phone_region": tenant.default_phone_region,
        "on_unsupported": tenant.on_unsupported,
        "base_url": tenant.base_url,
    }
    if tenant.custom_field_types:  # absent when none: older fingerprints stay valid
        parts["custom_field_types"] = {k: str(v) for k, v in tenant.custom_field_types.items()}
    return fingerprint(parts)


def _plain(value: Any) -> Any:
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=True)
    return value


def payload_fingerprint(payload: Any) -> str:
    return fingerprint(_plain(payload))


def raw_key(record: object) -> str | None:
    """The state key of a raw input record, when it names an external id."""
    # ``type(...) is`` first: an ABC isinstance check per row shows in the fast path.
    if type(record) is not dict and not isinstance(record, Mapping):
        return None
    value = record.get("external_id")
    if type(value) is str:
        # Exact, like record_keys: "abc" and "ABC" are two people (see there); NFC like
        # every text of a contact, so the raw key is the key the contact gets.
        stripped = value.strip()
        if not stripped.isascii():
            stripped = unicodedata.normalize("NFC", stripped)
        return "external_id=" + stripped if stripped else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return "external_id=" + str(value)


def _why_not_kept(before: str | None, current: str, name: str | None, stored: str | None) -> str:
    if before is None:
        return " (written before accounts were recorded, and not proven to be this account's)"
    if not same_place(before, current):
        return ""
    if name is None:
        return " (the key changed; name the account in the tenant's `account` to keep them)"
    if name != stored:
        return f" (the key changed, and the tenant's account name {name!r} is new)"
    return " (the key changed, and no stored id read back with its external id)"


@attrs.define
class _Pending:
    key: str
    fingerprint: str
    raw: str | None
    order: tuple[int, int] | None = None


class Incremental:
    """One run's use of the store (calls go to a worker thread: the store blocks)."""

    def __init__(
        self,
        store: StateStore,
        provider: Provider[Any],
        *,
        full: bool,
        lock: bool = True,
        lock_wait: float | None = 0.0,
    ) -> None:
        self.store = store
        self.provider = provider
        self.tenant = provider.tenant.name
        self.mapping = mapping_fingerprint(provider)
        self.full = full
        self.lock = lock
        """Whether the run takes the tenant lock (not under a run that holds it)."""
        self.lock_wait = lock_wait
        """Seconds to wait for the tenant lock (``None``: as long as it takes)."""
        self._lock: TenantLock | None = None
        self.account = account_id(provider)
        """The platform account this run writes to: only its records are used."""
        self.run_id: str | None = None
        self.seq: int | None = None
        """The run's place in the store's run sequence (see :meth:`order_of`)."""
        self._pending: dict[int, _Pending] = {}
        self._settled: list[Confirmed | FailedEntry] = []
        """Outcomes of rows this run sent, in the order they came, not written yet."""
        self._held: list[Confirmed | FailedEntry] = []
        """Those of keys with a row still unsettled (see :meth:`flush`)."""
        self._refreshed: list[Confirmed] = []
        """Unchanged contacts whose raw input is new (see :meth:`refresh_raw`)."""
        self._recent: Counter[str] = Counter()
        """Keys sent by this run whose outcome the store does not hold yet: the store
        cannot say what the platform holds for them."""
        self._recent_coarse: Counter[str] = Counter()
        """The same per coarse key: a row whose coarse key has a row in flight is not
        judged against the store (that row may be changing the very record)."""

    async def begin(
        self,
        read: Reader | None = None,
        log: TenantLog | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        """Take the tenant lock, settle which account the store's records belong
        to, and record the run's start. ``read`` runs the provider's read-only flows
        (the reported account, a read-back); ``cancelled`` stops waiting for the lock."""
        run_id = uuid.uuid4().hex
        if self.lock:
            await self._acquire(run_id, cancelled, log)
        await self._settle_account(read, log)
        self.run_id, self.seq = await asyncio.to_thread(
            self.store.begin_ordered_run,
            self.tenant,
            mapping_fingerprint=self.mapping,
            run_id=run_id,
        )

    def order_of(self, index: int) -> tuple[int, int] | None:
        """The order of this run's row at input position ``index``: later than every row
        of every run begun on the store before this one."""
        return None if self.seq is None else (self.seq, index)

    async def _acquire(
        self, run_id: str, cancelled: Callable[[], bool], log: TenantLog | None = None
    ) -> None:
        from ._state._lock import POLL, refusal  # noqa: PLC0415 - with the store only

        lock = self.store.tenant_lock(self.tenant)
        loop = asyncio.get_running_loop()
        wait = self.lock_wait
        deadline = None if wait is None else loop.time() + wait
        told = False
        while True:
            got, holder = await asyncio.to_thread(lock.try_acquire, run_id)
            if got:
                self._lock = lock
                return
            if cancelled() or (deadline is not None and loop.time() >= deadline):
                await asyncio.to_thread(lock.release)
                raise refusal(self.tenant, holder, wait, interrupted=cancelled())
            if log is not None and not told:
                # Said once, when the wait starts: a run that seems to hang says why,
                # and whom it waits for.
                told = True
                who = f"run {holder}" if holder else "another run"
                log.warning("waiting for %s to end: it holds the tenant's lock", who)
            pause = POLL if deadline is None else max(0.0, min(POLL, deadline - loop.time()))
            await asyncio.sleep(pause)

    def release(self) -> None:
        """Give the tenant lock up (the run ended, failed or was cancelled)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    async def _settle_account(self, read: Reader | None, log: TenantLog | None) -> None:
        flow = self.provider.reported_account()
        if flow is not None and read is not None:
            reported = await read(flow)
            self.account = account_id(
                self.provider, reported if isinstance(reported, str) else None
            )
        current, name = self.account, self.provider.tenant.account
        stored = await asyncio.to_thread(self.store.tenant_account, self.tenant)
        adopt: tuple[str | None, ...] = ()
        if stored.account != current:
            held = await asyncio.to_thread(self.store.accounts, self.tenant)
            before = stored.account
            others = {account: n for account, n in held.items() if account != current}
            if before is None and None in others:
                # Written before accounts were recorded: adopted only when the mapping
                # (the base URL with it) is unchanged and a stored id reads back.
                if stored.mapping_fingerprint == self.mapping and await self._reads_back(
                    None, read
                ):
                    adopt = (None,)
            elif (
                before is not None
                and same_place(before, current)
                and name is not None
                and name == stored.name
                and await self._reads_back(before, read)
            ):
                adopt = (before,)
            if log is not None:
                kept = sum(others.get(account, 0) for account in adopt)
                left = sum(others.values()) - kept
                if kept:
                    log.info(
                        "the state store's %d record(s) of this account's previous key "
                        "(or of an earlier version) are kept: a stored id read back with "
                        "its stored external id",
                        kept,
                    )
                if left:
                    log.warning(
                        "the state store holds %d record(s) of another platform account "
                        "(another host, app or key): their remote ids and confirmations "
                        "are not reused; those contacts are looked up or created as new%s",
                        left,
                        _why_not_kept(before, current, name, stored.name),
                    )
        if stored.account != current or stored.name != name or adopt:
            await asyncio.to_thread(
                self.store.set_tenant_account, self.tenant, current, name, adopt_from=adopt
            )

    async def _reads_back(self, account: str | None, read: Reader | None) -> bool:
        """Whether one stored id of ``account`` reads back with its external id."""
        if read is None:
            return False
        record = await asyncio.to_thread(self.store.sample_known, self.tenant, account)
        if record is None or record.remote_id is None:
            return False
        flow = self.provider.read_back(record.remote_id, record.key.partition("=")[2])
        if flow is None:
            return False
        try:
            return (await read(flow)) is True
        except ContactsyncError:
            return False  # not proven: the safe answer is another account

    def key_of(self, item: Prepared[Any]) -> str | None:
        """The key the store records ``item`` under (the provider decides)."""
        return self.provider.state_key(item)

    async def lookup(self, keys: list[str]) -> dict[str, StateRecord]:
        # Looked up with ``full`` too: the identity map still saves look-ups.
        if not keys:
            return {}
        found = await asyncio.to_thread(self.store.get_many, self.tenant, keys)
        # Another account's records are as good as absent (rule 10): its remote ids
        # name other people here, its confirmations say nothing of this account.
        account = self.account
        return {key: record for key, record in found.items() if record.account == account}

    async def recall(self, remote_id: str) -> list[str]:
        """The keys the store confirmed ``remote_id`` for, in this run's account only
        (another account's ids name other records)."""
        return await asyncio.to_thread(
            self.store.keys_of_remote_id, self.tenant, self.account, remote_id
        )

    async def ids_by_coarse(self, keys: list[str]) -> dict[str, str]:
        """For keys the store does not hold: the id of this account's record under
        another key the platform may match alike (see ``StateStore.ids_by_coarse``)."""
        if not keys:
            return {}
        return await asyncio.to_thread(self.store.ids_by_coarse, self.tenant, self.account, keys)

    async def newest_orders(self, keys: list[str]) -> dict[str, tuple[int, int]]:
        """Per key: the newest order this account's store confirmed under any key with
        the same coarse key (what a replayed row must not be older than)."""
        if not keys:
            return {}
        return await asyncio.to_thread(self.store.newest_orders, self.tenant, self.account, keys)

    def recent(self, key: str) -> bool:
        return key in self._recent or coarse_key(key) in self._recent_coarse

    def raw_unchanged(self, record: StateRecord | None, raw: str) -> bool:
        return not self.full and record is not None and record.raw_is_current(raw, self.mapping)

    def unchanged(self, record: StateRecord | None, item: Prepared[Any]) -> tuple[bool, str]:
        print_ = payload_fingerprint(item.payload)
        same = not self.full and record is not None and record.is_current(print_, self.mapping)
        return same, print_

    def refresh_raw(self, key: str, record: StateRecord, raw: str | None) -> None:
        """``record``'s contact came out unchanged after mapping, from raw input the
        store does not know (a field the platform ignores moved, say): remember this
        input's hash, so that the next run settles it without mapping it again."""
        if raw is None or raw == record.raw_hash or record.fingerprint is None:
            return
        self._refreshed.append(
            Confirmed(key, record.fingerprint, self.mapping, "unchanged", record.remote_id, raw)
        )

    @staticmethod
    def known(record: StateRecord | None) -> Known | None:
        """What the identity map says about a contact: ``None`` unless a write of it
        was confirmed once (a record only ever marked in flight, or only skipped or
        failed, proves nothing about the platform)."""
        if record is None or (record.fingerprint is None and record.remote_id is None):
            return None
        return Known(record.remote_id)

    @staticmethod
    def in_doubt(record: StateRecord | None) -> bool:
        """Whether an earlier run sent this identity without learning the outcome (it
        was killed while the write was in flight, or the answer was lost), and no id
        of it is known: the platform may hold a record the store cannot name."""
        return (
            record is not None
            and record.remote_id is None
            and (record.in_flight or record.last_error_code == "outcome_unknown")
        )

    async def sending(
        self,
        items: list[tuple[Prepared[Any], str, str, str | None]],
        orders: Mapping[int, tuple[int, int]] | None = None,
    ) -> None:
        """Mark ``(item, key, fingerprint, raw hash)`` in flight before they are sent.
        ``orders`` holds the order of rows read back from a ``--failed`` file (theirs,
        not this run's): what the store records once the platform confirms them."""
        for item, key, print_, raw in items:
            order = orders.get(item.index) if orders else None
            if order is None:
                order = self.order_of(item.index)
            self._pending[item.index] = _Pending(key, print_, raw, order)
            self._recent[key] += 1
            self._recent_coarse[coarse_key(key)] += 1
        if items:
            assert self.run_id is not None
            keys = [key for _, key, _, _ in items]
            sent = [self._pending[item.index].order for item, _, _, _ in items]
            await asyncio.to_thread(
                functools.partial(
                    self.store.mark_in_flight,
                    self.tenant,
                    self.run_id,
                    keys,
                    account=self.account,
                    orders=sent,
                )
            )

    def outcome(self, outcome: Outcome) -> None:
        """Note the final outcome of a contact this run sent."""
        pending = self._pending.pop(outcome.index, None)
        if pending is None:
            return
        if outcome.status in (Status.CREATED, Status.UPDATED, Status.WRITTEN, Status.UNCHANGED):
            self._settled.append(
                Confirmed(
                    pending.key,
                    pending.fingerprint,
                    self.mapping,
                    outcome.status.value,
                    outcome.remote_id,
                    pending.raw,
                    pending.order,
                )
            )
        else:
            code = outcome.error.code if outcome.error else outcome.reason
            status = {Status.REJECTED: "rejected", Status.SKIPPED: "skipped"}.get(
                outcome.status, "failed"
            )
            self._settled.append(FailedEntry(pending.key, code, status))

    @property
    def due(self) -> bool:
        return len(self._settled) + len(self._refreshed) >= FLUSH_EVERY

    async def flush(self, final: bool = False) -> None:
        settled, self._settled = self._held + self._settled, []
        # Writing an outcome clears its key's in-flight marker. While a later row of the
        # same person is still being sent, the marker must stay (were the run killed
        # while the platform applies that row, the store would hold the earlier one as
        # what the platform has): a key's outcomes wait until its last row is settled.
        counts = Counter(entry.key for entry in settled)
        if final:
            self._held = []
        else:
            waiting = {key for key, n in counts.items() if self._recent[key] > n}
            self._held = [entry for entry in settled if entry.key in waiting]
            for key in waiting:
                del counts[key]
        # Per key, the last confirmation, then a failure when one came after it.
        last: dict[str, Confirmed | FailedEntry] = {}
        last_confirmed: dict[str, Confirmed] = {}
        for entry in settled:
            if entry.key in counts:
                last[entry.key] = entry
                if isinstance(entry, Confirmed):
                    before = last_confirmed.get(entry.key)
                    if entry.remote_id is None and before is not None:
                        # No id in this answer: the one an earlier row got still holds.
                        last_confirmed[entry.key] = entry._replace(remote_id=before.remote_id)
                    else:
                        last_confirmed[entry.key] = entry
        confirmed = list(last_confirmed.values())
        failed = [entry for entry in last.values() if isinstance(entry, FailedEntry)]
        # A refresh is for a person's first row in the run. Once a later row of theirs
        # was sent, what that row confirms is what the platform holds; until then its
        # in-flight marker must stay, and a write of the refresh would clear it (were
        # the run killed meanwhile, the next run would call the first row unchanged).
        refreshed = [entry for entry in self._refreshed if entry.key not in self._recent]
        self._refreshed = []
        if confirmed or refreshed:
            await asyncio.to_thread(
                self.store.confirm, self.tenant, refreshed + confirmed, account=self.account
            )
        if failed:
            await asyncio.to_thread(self.store.record_failure, self.tenant, failed)
        for key, n in counts.items():
            self._recent[key] -= n
            if self._recent[key] <= 0:
                del self._recent[key]
            coarse = coarse_key(key)
            self._recent_coarse[coarse] -= n
            if self._recent_coarse[coarse] <= 0:
                del self._recent_coarse[coarse]

    async def finish(self, counts: Mapping[str, int]) -> None:
        await self.flush(final=True)
        if self.run_id is not None:
            await asyncio.to_thread(self.store.finish_run, self.run_id, counts)


class PlanJudge:
    """``plan`` with a state store: the store is only read. A contact the store says
    the platform holds as mapped is ``unchanged``; under ``create_only`` one it knows
    is ``skipped``; the rest is planned with what the identity map knows (so the plan
    shows, e.g., iVvy writing by id without its look-up). As in a run, only a person's
    first row is judged against the store."""

    def __init__(
        self, store: StateStore, provider: Provider[Any], superseded: Container[int] = ()
    ) -> None:
        self.store = store
        self.provider = provider
        self.tenant = provider.tenant.name
        self.mapping = mapping_fingerprint(provider)
        self.account = account_id(provider)
        self._seen: set[str] = set()
        self._superseded = superseded
        """Input positions that are not their person's last (the read-ahead): as in a
        run, they are skipped, never planned."""

    def __call__(self, item: Prepared[Any]) -> Prepared[Any] | Outcome:
        if item.index in self._superseded:
            return self._outcome(item, Status.SKIPPED, None, SkipReason.SUPERSEDED)
        key = self.provider.state_key(item)
        if key is None:
            return item
        first = key not in self._seen
        self._seen.add(key)
        if not first:
            return item
        record = self.store.get_many(self.tenant, [key]).get(key)
        if record is not None and record.account != self.account:
            record = None  # another account's: its remote id names someone else there
        print_ = payload_fingerprint(item.payload)
        if record is not None and record.is_current(print_, self.mapping):
            return self._outcome(item, Status.UNCHANGED, record.remote_id)
        known = Incremental.known(record)
        if known is None:
            return item
        if self.provider.tenant.sync_mode == "create_only":
            return self._outcome(item, Status.SKIPPED, known.remote_id, SkipReason.EXISTS)
        return attrs.evolve(item, known=known)

    @staticmethod
    def _outcome(
        item: Prepared[Any], status: Status, remote_id: str | None, reason: str | None = None
    ) -> Outcome:
        return Outcome(
            item.index,
            status,
            remote_id=remote_id,
            external_id=item.contact.external_id,
            warnings=item.warnings,
            input=item.contact,
            reason=reason,
        )
