"""The worker's side: run one chunk of one shard, exactly once in effect.

A chunk's result is kept in Redis under its run and chunk number before the task
returns. A copy of the task delivered again (its worker died, or the broker's
visibility timeout passed while it ran) first waits for the shard's lease, then
returns that kept result when there is one; otherwise it runs the chunk again, and
the shared state store makes that send only what the platform has not confirmed.
A copy that finds the lease held raises :class:`ShardBusy` (the task retries it).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._client import Client
from .._config import Config
from .._outcome import ErrorCode, Outcome, OutcomeError, Status
from .._secret import Scrubber
from ._lease import ShardLease
from ._wire import outcome_to_wire

if TYPE_CHECKING:
    import redis

log = logging.getLogger("contactsync")

DONE_TTL = 7 * 24 * 3600
"""Seconds a finished chunk's result is kept for a late redelivery (a week)."""


class ShardBusy(Exception):
    """Another worker holds the shard's lease: this copy of the chunk must wait (the
    task is retried later; nothing was sent)."""


def done_key(run_id: str, chunk: int) -> str:
    return f"contactsync:done:{run_id}:{chunk}"


def lease_key(run_id: str, shard: int) -> str:
    return f"contactsync:lease:{run_id}:{shard}"


def check_distributed_state(config: Config) -> str:
    """The state store URL every worker shares, or :class:`ValueError` saying why not."""
    if config.scale is None:
        raise ValueError("a distributed run needs a [scale] table (broker = redis://...)")
    if config.state is None:
        raise ValueError(
            "a distributed run needs a [state] url that every worker shares "
            "(postgresql://...): redeliveries rely on it to send only what was not confirmed"
        )
    url = config.state.url.reveal()
    if not url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        raise ValueError(
            "[state] url must be a PostgreSQL database for a distributed run: "
            "workers on other machines cannot share a SQLite file"
        )
    return url


class ChunkRunner:
    """One per worker process: a client per tenant (connections and the provider's
    setup are reused from chunk to chunk), the shared Redis."""

    def __init__(self, config: Config, *, redis_client: redis.Redis | None = None) -> None:
        check_distributed_state(config)
        assert config.scale is not None
        self.config = config
        if redis_client is None:
            import redis as redis_module  # noqa: PLC0415 - the celery extra

            redis_client = redis_module.Redis.from_url(config.scale.redis_url.reveal())
        self.redis = redis_client
        self._clients: dict[str, Client] = {}
        self._lock = threading.Lock()

    def client(self, tenant: str) -> Client:
        with self._lock:
            if tenant not in self._clients:
                # The producer of the distributed run holds the tenant lock; its chunks
                # run at once on many workers, under that one lock.
                self._clients[tenant] = Client(self.config, tenant, tenant_lock=False)
            return self._clients[tenant]

    def run(
        self,
        *,
        run_id: str,
        tenant: str,
        shard: int,
        chunk: int,
        rows: Sequence[tuple[int, Any]],
        full: bool = False,
    ) -> dict[str, Any]:
        """``{"outcomes": [...], "requests": n}``, one outcome per row, by input index."""
        kept = self.redis.get(done_key(run_id, chunk))
        if kept is not None:
            return _loaded(kept)
        lease = ShardLease(self.redis, lease_key(run_id, shard))
        if not lease.try_acquire():
            raise ShardBusy(f"shard {shard} of run {run_id} is held by another worker")
        with lease:
            kept = self.redis.get(done_key(run_id, chunk))
            if kept is not None:
                return _loaded(kept)
            result = self._upsert(tenant, rows, full)
            self.redis.set(done_key(run_id, chunk), json.dumps(result), ex=DONE_TTL)
        return result

    def _upsert(self, tenant: str, rows: Sequence[tuple[int, Any]], full: bool) -> dict[str, Any]:
        indexes = [int(index) for index, _ in rows]
        outcomes: dict[int, dict[str, Any]] = {}
        requests = 0
        try:
            client = self.client(tenant)
            run = client.upsert_many([record for _, record in rows], full=full)
            for outcome in run:
                outcomes[outcome.index] = outcome_to_wire(outcome, indexes[outcome.index])
            requests = run.summary.requests
        except Exception as exc:
            # The chunk as a whole could not run (the state store or the config is
            # broken): its rows without an outcome fail, the shard's later chunks go on.
            log.exception("chunk of tenant %s could not run", tenant)
            scrub = _scrubber(self.config, tenant)
            error = OutcomeError(
                ErrorCode.REQUEST_FAILED,
                scrub(f"the worker could not run this chunk: {type(exc).__name__}: {exc}"),
                retryable=True,
            )
            for position, (index, record) in enumerate(rows):
                if position not in outcomes:
                    failed = Outcome(
                        position, Status.FAILED, external_id=_external_id(record), error=error
                    )
                    outcomes[position] = outcome_to_wire(failed, index)
        return {"outcomes": [outcomes[p] for p in sorted(outcomes)], "requests": requests}

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


def _external_id(record: object) -> str | None:
    """The row's own external_id, so that even a chunk that could not run says whose
    rows failed."""
    value = record.get("external_id") if isinstance(record, Mapping) else None
    return value if isinstance(value, str) else None


def _scrubber(config: Config, tenant: str) -> Any:
    try:
        return Scrubber.for_credentials(config.tenant(tenant).credentials).scrub
    except Exception:
        return lambda text: text


def _loaded(raw: bytes | str | Any) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, Mapping):
        raise TypeError("a kept chunk result is not an object")
    return dict(value)
