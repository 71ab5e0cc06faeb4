"""Client-side rate limiting, per tenant.

:class:`RateLimit` (declared by providers), :class:`Limiter` and
:func:`build_limiter`: exact sliding windows (never more than ``rate`` requests in
ANY ``per``-second window, no start-up burst), matched per HTTP method and path.
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import attrs

if TYPE_CHECKING:
    # Loaded on first use: providers import RateLimit, and `import contactsync`
    # should not pay for the library.
    from limits import RateLimitItem
    from limits.aio.storage import Storage
    from limits.util import WindowStats


# ---------------------------------------------------------------------------
# Exact sliding windows for the asyncio driver.
#
# Built on ``limits`` (alisaifee/limits) rather than pyrate-limiter or our own log:
# its moving-window strategy keeps one timestamp per request and admits a request
# only when the ``rate``-th newest is older than the window, which is exactly "never
# more than rate in any window"; it has an asyncio API (``limits.aio``) and the same
# strategy on in-memory and Redis storages (an atomic Lua script there), so a shared
# per-tenant window across Celery workers is a storage URI away. Its windows are
# whole seconds (Redis EXPIRE is integral), hence ``RateLimit.per`` must be too.
# ---------------------------------------------------------------------------

_NAMESPACE = "contactsync"
_RECHECK = 0.001
"""Seconds to wait after losing a race for the last slot (another task or worker)."""


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a whole number of requests, at least 1")


def _whole_seconds(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or value < 1 or value != int(value):
        raise ValueError(f"{attribute.name} must be a whole number of seconds, at least 1")


def _upper(value: str) -> str:
    return value.upper()


@attrs.frozen
class RateLimit:
    """A documented limit: at most ``rate`` requests in any ``per`` seconds.

    ``method`` is an HTTP method or ``"*"``; ``path`` an fnmatch pattern on the request
    path without its query string (``"/api/v1/contacts*"``; ``*`` also crosses ``/``).
    """

    rate: int = attrs.field(validator=_positive_int)
    per: float = attrs.field(validator=_whole_seconds)
    method: str = attrs.field(default="*", converter=_upper)
    path: str = "*"

    @classmethod
    def from_rate(cls, per_second: float, method: str = "*", path: str = "*") -> RateLimit:
        """A window for a rate given per second, e.g. ``requests_per_second = 2.5``.

        Exact when ``per_second`` times a window of 1 to 60 s is a whole number
        (2.5/s becomes 5 per 2 s, 0.5/s 1 per 2 s); otherwise rounded down, never up.
        """
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        for per in range(1, 61):
            count = per_second * per
            if count >= 1 and abs(count - round(count)) < 1e-9:
                return cls(round(count), per, method, path)
        if per_second >= 1:
            return cls(math.floor(per_second), 1, method, path)
        return cls(1, math.ceil(1 / per_second), method, path)

    def __str__(self) -> str:
        scope = "" if (self.method, self.path) == ("*", "*") else f" {self.method} {self.path}"
        per = "s" if self.per == 1 else f"{self.per:g}s"
        return f"{self.rate}/{per}{scope}"

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method != method.upper():
            return False
        return fnmatch.fnmatchcase(path.split("?", 1)[0], self.path)


class Limiter(Protocol):
    async def acquire(self, method: str, path: str) -> None:
        """Wait until every limit matching the request allows one more, then count it."""

    async def aclose(self) -> None:
        """Close the storage's connections (call it on the loop that used them)."""


class NoLimiter:
    """For a platform that documents no limit."""

    async def acquire(self, method: str, path: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


class _Windows(Protocol):
    """What :class:`WindowLimiter` asks of a moving-window strategy."""

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool: ...

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats: ...


class ClockedWindows:
    """The moving-window strategy of ``limits`` (admit a request only when fewer than
    ``rate`` were admitted in the last ``per`` seconds), in this process, on a caller's
    clock.

    ``limits`` reads ``time.time()`` itself and its clock cannot be injected; a test
    that gives the client a simulated clock needs the windows to read that clock, or
    every window would wait out real seconds. One timestamp log per window, at most
    ``rate`` long.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}

    def _log(self, item: RateLimitItem, identifiers: tuple[str, ...]) -> tuple[deque[float], float]:
        now = self._clock()
        log = self._logs.setdefault(item.key_for(*identifiers), deque())
        # Half-open windows, as ``limits`` reports them: a stamp exactly ``per`` old
        # has left the window.
        while log and log[0] <= now - item.get_expiry():
            log.popleft()
        return log, now

    async def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        log, now = self._log(item, identifiers)
        if len(log) >= item.amount:
            return False
        log.append(now)
        return True

    async def get_window_stats(self, item: RateLimitItem, *identifiers: str) -> WindowStats:
        from limits.util import WindowStats  # noqa: PLC0415 - see the imports

        log, now = self._log(item, identifiers)
        reset = log[0] + item.get_expiry() if log else now
        return WindowStats(reset, item.amount - len(log))


class WindowLimiter:
    """Sliding-window limits of one tenant on a ``limits`` async storage.

    A request counts against every limit it matches. Requests matching the same set
    of limits queue in arrival order; sets that share a limit settle races through
    the storage (a lost race re-checks, never over-admits). If the storage refuses a
    later limit after an earlier one counted the request (possible only when several
    processes share the storage), the request is counted again on retry: the
    earlier limit is over-counted, never exceeded.

    Its clock is the library's (``time.time()``, also for Redis: each client stamps
    its own requests), so the workers sharing one window need synchronised clocks.
    With ``clock`` (a process-local window only) the windows are
    :class:`ClockedWindows` on that clock instead, and ``storage`` is unused.
    One instance serves one event loop.
    """

    def __init__(
        self,
        limits: Sequence[RateLimit],
        *,
        key: str,
        storage: Storage,
        sleep: Callable[[float], Awaitable[object]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import asyncio  # noqa: PLC0415 - asyncio is ~30 ms of import contactsync otherwise

        from limits import RateLimitItemPerSecond  # noqa: PLC0415 - see the imports
        from limits.aio.strategies import MovingWindowRateLimiter  # noqa: PLC0415

        self.limits = tuple(limits)
        self._storage = storage
        self._strategy: _Windows = (
            MovingWindowRateLimiter(storage) if clock is None else ClockedWindows(clock)
        )
        self._clock = time.time if clock is None else clock
        self._items: list[tuple[RateLimitItem, tuple[str, str, str]]] = [
            (
                RateLimitItemPerSecond(limit.rate, int(limit.per), namespace=_NAMESPACE),
                (key, limit.method, limit.path),
            )
            for limit in self.limits
        ]
        self._sleep = asyncio.sleep if sleep is None else sleep
        self._lock = asyncio.Lock
        self._queues: dict[tuple[int, ...], asyncio.Lock] = {}

    async def acquire(self, method: str, path: str) -> None:
        matching = tuple(i for i, limit in enumerate(self.limits) if limit.matches(method, path))
        if not matching:
            return
        queue = self._queues.get(matching)
        if queue is None:
            queue = self._queues[matching] = self._lock()
        async with queue:
            while True:
                wait = await self._wait_for(matching)
                if wait <= 0:
                    hits = [
                        await self._strategy.hit(self._items[i][0], *self._items[i][1])
                        for i in matching
                    ]
                    if all(hits):
                        return
                    wait = _RECHECK
                await self._sleep(wait)

    async def aclose(self) -> None:
        # The library has no close of its own: its Redis storage keeps a redis-py
        # asyncio client (``bridge.storage``) whose connections belong to this loop.
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        close = getattr(client, "aclose", None)
        if close is not None:
            await close()

    async def _wait_for(self, matching: tuple[int, ...]) -> float:
        """Seconds until every matching window has room (0 when they have now)."""
        wait = 0.0
        for index in matching:
            item, identifiers = self._items[index]
            stats = await self._strategy.get_window_stats(item, *identifiers)
            if stats.remaining < 1:
                wait = max(wait, stats.reset_time - self._clock(), _RECHECK)
        return wait


HEADROOM = 0.9
"""The share of a documented limit the client uses. Requests admitted within one
window on our side can arrive closer together at the platform (connection set-up,
scheduling, the network), and the platform counts arrivals: measured here, 1,000
requests admitted at exactly 200 per second drew 31 answers 429 from an emulator
enforcing 200 per second; at 90% none."""


def with_headroom(limit: RateLimit) -> RateLimit:
    """``limit`` at :data:`HEADROOM` of its rate (what the engine enforces for a
    platform's documented limit)."""
    return attrs.evolve(limit, rate=max(1, math.floor(limit.rate * HEADROOM)))


def _async_storage_uri(uri: str) -> str:
    return uri if uri.startswith("async+") else f"async+{uri}"


def build_limiter(
    limits: Sequence[RateLimit],
    *,
    key: str,
    storage_uri: str = "memory://",
    sleep: Callable[[float], Awaitable[object]] | None = None,
    clock: Callable[[], float] | None = None,
) -> Limiter:
    """The limiter for one tenant (``key``, e.g. the tenant name).

    ``storage_uri`` is a ``limits`` storage: ``memory://`` (this process) or e.g.
    ``redis://host:6379`` (shared by every process on every machine: the window is
    kept in Redis; needs the ``redis`` package, e.g. the ``celery`` extra).
    ``sleep`` (``asyncio.sleep`` when None) and ``clock`` are injectable for tests:
    with ``clock`` the windows read it (:class:`ClockedWindows`), so a test in simulated
    time waits simulated seconds. A shared storage keeps the library's clock (every
    process must read the same one), so ``clock`` is refused with one.
    """
    if not limits:
        return NoLimiter()
    from limits.aio.storage import Storage  # noqa: PLC0415 - see the imports
    from limits.storage import storage_from_string  # noqa: PLC0415

    uri = _async_storage_uri(storage_uri)
    if clock is not None and not uri.startswith("async+memory"):
        raise ValueError("a limiter on a shared storage keeps the library's clock")
    # The Redis client is redis-py (the ``celery`` extra installs it, and Celery's broker
    # uses it too); the library's own default would be another package.
    options = {"implementation": "redispy"} if uri.startswith("async+redis") else {}
    storage = storage_from_string(uri, **options)
    if not isinstance(storage, Storage):  # pragma: no cover - async+ schemes give async ones
        raise TypeError(f"{storage_uri} is not an async storage")
    return WindowLimiter(limits, key=key, storage=storage, sleep=sleep, clock=clock)
