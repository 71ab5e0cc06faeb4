"""A shard's lease in Redis: held by the one worker running one of its chunks,
renewed by a heartbeat while it runs, gone within ``ttl`` seconds of a worker dying.

Why a lease and not only the broker's redelivery: a Redis broker hands a task whose
worker has not acknowledged it within the visibility timeout to another worker,
whether the first died or is still polling a long bulk import. The second copy
finds the lease held and is retried a little later (it sends nothing meanwhile);
once it gets the lease the chunk is either finished (its result is read back,
nothing is sent) or was abandoned by a dead worker (it runs again, and the state
store sends only what was not confirmed).
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

log = logging.getLogger("contactsync")

LEASE_TTL = 10.0
"""Seconds a lease outlives its last heartbeat (a dead worker's shard waits this long)."""


class ShardLease:
    def __init__(
        self, client: redis.Redis, key: str, *, ttl: float = LEASE_TTL, poll: float = 0.1
    ) -> None:
        self._lock = client.lock(key, timeout=ttl, thread_local=False)
        self._ttl = ttl
        self._poll = poll
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.lost = False
        """Set when a heartbeat found the lease gone (Redis unreachable for ``ttl``)."""

    def __enter__(self) -> ShardLease:
        while self._beat is None and not self.try_acquire():
            time.sleep(self._poll)
        return self

    def try_acquire(self) -> bool:
        """Take the lease if it is free (and start its heartbeat); never waits."""
        if not self._lock.acquire(blocking=False):
            return False
        self._beat = threading.Thread(target=self._heartbeat, name="contactsync-lease", daemon=True)
        self._beat.start()
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._ttl / 4):
            try:
                self._lock.reacquire()
            except Exception as exc:  # Redis away or the lease expired: say so, go on
                self.lost = True
                log.warning("shard lease %s could not be renewed: %s", self._lock.name, exc)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        try:
            self._lock.release()
        except Exception as error:  # expired meanwhile: nothing left to release
            log.warning("shard lease %s was already gone: %s", self._lock.name, error)
