"""Broker and result-backend calls that ride out a short Redis outage.

A restart of Redis is a moment of refused connections; the producer retries each of
its calls until a time budget runs out, then gives up with :class:`BrokerLost` so that
every row not yet reported still gets its outcome. It also remembers that an outage
happened: a Redis without persistence comes back empty, so chunks sent before it may
be gone from the queue and must be sent again. A restart quicker than the producer's
calls (redis-py reconnects without a word) is noticed by :class:`RestartProbe`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import kombu.exceptions
import redis
import redis.exceptions

T = TypeVar("T")

# What a Redis that is down, restarting or refusing us raises through redis-py or kombu.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    kombu.exceptions.OperationalError,
    ConnectionError,
    TimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    """A connection error, or an error raised while handling one: Celery's result
    consumer gives up reconnecting its subscription with a bare ``RuntimeError``."""
    seen: BaseException | None = exc
    for _depth in range(8):
        if seen is None:
            return False
        if isinstance(seen, CONNECTION_ERRORS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class BrokerLost(Exception):
    """The broker or the result backend stayed unreachable for the whole budget."""


class OutageGuard:
    """Runs broker calls, retrying connection errors for up to ``budget`` seconds of
    one continuous outage."""

    def __init__(
        self,
        budget: float,
        *,
        pause: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        stopped: Callable[[], bool] = lambda: False,
    ) -> None:
        self.budget = budget
        self._stopped = stopped
        self._pause = pause
        self._clock = clock
        self._sleep = sleep
        self.outages = 0
        """How many outages were ridden out (each may have emptied the queue)."""

    def call(self, action: Callable[[], T]) -> T:
        deadline: float | None = None
        while True:
            try:
                value = action()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                now = self._clock()
                if deadline is None:
                    deadline = now + self.budget
                if self._stopped():
                    # Interrupted while waiting for Redis: give up now, not at the deadline.
                    raise BrokerLost(
                        "the run was stopped while the [scale] broker was unreachable "
                        f"({type(exc).__name__})"
                    ) from None
                if now >= deadline:
                    # The type only: a message could carry the broker URL.
                    raise BrokerLost(
                        f"the [scale] broker stayed unreachable for {self.budget:g}s "
                        f"({type(exc).__name__})"
                    ) from None
                self._sleep(self._pause)
                continue
            if deadline is not None:
                self.outages += 1
            return value

    def attempt(self, action: Callable[[], object]) -> bool:
        """Run a call that may be skipped (forgetting a result that would expire
        anyway): not retried, but an outage it meets is counted, as Redis may come
        back from it empty. False if it met one."""
        try:
            action()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.outages += 1
            return False
        return True

    def count_outage(self) -> None:
        """An outage noticed otherwise (Redis came back empty between two calls)."""
        self.outages += 1


class RestartProbe:
    """A key the producer keeps in the result backend's Redis while it runs: gone,
    it says that Redis came back empty (restarted without persistence, or flushed)
    even if no call of the producer ever failed."""

    TTL = 24 * 3600
    """Seconds the key outlives a producer that died (each look renews it)."""

    def __init__(self, client: Any, key: str) -> None:
        self._client = client
        self._key = key
        self._off = False

    @classmethod
    def of(cls, backend: object, key: str) -> RestartProbe | None:
        """The probe of a Redis result backend, or None for any other backend."""
        client = getattr(backend, "client", None)
        return cls(client, key) if isinstance(client, redis.Redis) else None

    def start(self) -> None:
        self._set(xx=False)

    def emptied(self) -> bool:
        """Whether the key was gone (it is there again afterwards)."""
        if self._off or self._set(xx=True):
            return False
        self._set(xx=False)
        return True

    def stop(self) -> None:
        if not self._off:
            self._client.delete(self._key)

    def _set(self, *, xx: bool) -> bool:
        try:
            return bool(self._client.set(self._key, b"1", ex=self.TTL, xx=xx))
        except redis.exceptions.ResponseError:
            # Refused (an ACL without SET on our keys, a read-only replica): no probe,
            # as before it existed, rather than a run that ends in a traceback.
            self._off = True
            return True
