"""A token bucket shared by every request of one client (one tenant)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up.

    :meth:`reserve` books the next token and says how long to wait for it, so the
    sync and async limiters below differ only in how they wait.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._stamp: float | None = None

    def reserve(self, now: float) -> float:
        if self._stamp is None:
            self._stamp = now
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class RateLimiter:
    """Blocking limiter for the sync engine (thread-safe)."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._bucket = None if rate is None else TokenBucket(rate)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self._bucket is None:
            return
        with self._lock:
            delay = self._bucket.reserve(self._clock())
        if delay > 0:
            self._sleep(delay)


class AsyncRateLimiter:
    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = asyncio.sleep,
    ) -> None:
        self._bucket = None if rate is None else TokenBucket(rate)
        self._clock = clock
        self._sleep = sleep

    async def acquire(self) -> None:
        if self._bucket is None:
            return
        # reserve() has no await inside, so on one event loop it needs no lock.
        delay = self._bucket.reserve(self._clock())
        if delay > 0:
            await self._sleep(delay)  # type: ignore[misc]
