"""Hosting provider emulators: in-process as an httpx transport, or on loopback.

An emulator is a function from ``httpx.Request`` to ``httpx.Response`` over
in-memory state. :class:`EmulatorApp` adds what every emulator shares: the
``/__emulator__/`` inspection endpoints, a lock, and seeded fault injection.
"""

from __future__ import annotations

import abc
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar, overload

import attrs
import httpx

from ._fault_kinds import KINDS, SLOW

INSPECT_PREFIX = "/__emulator__/"
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return httpx.Response(
        status,
        content=content,
        headers={"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
    )


K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


class RecordStore(dict[K, V]):
    """An emulator's stored records, counting every record a lookup or scan touches.

    ``touched`` makes "a request costs the same with 100 or 100,000 records stored"
    testable without a clock: ``store[k]``, ``store.get(k)`` and each record yielded by
    iterating ``store`` / ``values()`` / ``items()`` count one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.touched = 0

    def __getitem__(self, key: K) -> V:
        self.touched += 1
        return super().__getitem__(key)

    @overload  # type: ignore[override]
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V | D, /) -> V | D: ...

    def get(self, key: K, default: Any = None, /) -> Any:
        self.touched += 1
        return super().get(key, default)

    def __iter__(self) -> Iterator[K]:
        for key in super().__iter__():
            self.touched += 1
            yield key

    def values(self) -> Iterator[V]:  # type: ignore[override]
        for value in super().values():
            self.touched += 1
            yield value

    def items(self) -> Iterator[tuple[K, V]]:  # type: ignore[override]
        for item in super().items():
            self.touched += 1
            yield item


class Emulator(abc.ABC):
    """A platform's documented behaviour, in memory. Subclasses are single-threaded:
    :class:`EmulatorApp` serializes calls."""

    @abc.abstractmethod
    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request of the platform's API (authentication included)."""

    @abc.abstractmethod
    def contacts(self) -> list[dict[str, Any]]:
        """Every stored contact, in the platform's own shape."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget every stored contact."""

    def rate_limits(self) -> Sequence[WindowLimit]:
        """The platform's documented request-rate windows, most specific first (none by
        default). :class:`EmulatorApp` counts requests against them and, when enforcing,
        answers 429 above them."""
        return ()

    def monotonic(self) -> float:
        """The clock rate windows are measured with (seconds)."""
        return time.monotonic()


@attrs.frozen
class WindowLimit:
    """At most ``limit`` requests per sliding ``window`` seconds.

    It covers the requests whose method is in ``methods`` (any when ``None``) and whose
    path equals ``path`` (any when ``None``). A request counts against the first of an
    app's limits that covers it, so list method-specific limits before a shared one.
    """

    limit: int
    window: float = 1.0
    name: str = "all requests"
    methods: frozenset[str] | None = None
    path: str | None = None
    message: str = "Too many requests"
    """The text of the 429 answered above the limit."""

    def __attrs_post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError("a rate limit needs a positive limit and window")

    def covers(self, request: httpx.Request) -> bool:
        if self.methods is not None and request.method not in self.methods:
            return False
        return self.path is None or request.url.path.rstrip("/") == self.path


class RateWindow:
    """Requests in the sliding window of one :class:`WindowLimit`, and the most seen at once."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._times: deque[float] = deque()
        self.max_in_window = 0
        self.count = 0
        self.rejected = 0

    def current(self, now: float) -> int:
        """Requests counted in the window ending at ``now``."""
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        return len(self._times)

    def add(self, now: float) -> None:
        self.current(now)
        self._times.append(now)
        self.count += 1
        self.max_in_window = max(self.max_in_window, len(self._times))


class DroppedConnection(httpx.RemoteProtocolError):
    """The emulator closed the connection without answering."""


class LostResponse(httpx.ReadError):
    """The emulator applied the request, then lost the response."""


@attrs.frozen
class Faults:
    """With probability ``rate`` a request is faulted, the kind drawn evenly from ``kinds``."""

    rate: float = 0.0
    seed: int | None = None
    retry_after: str = "1"
    kinds: tuple[str, ...] = KINDS
    slow_seconds: float = 1.0

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("fail rate must be between 0 and 1")
        unknown = set(self.kinds) - {*KINDS, SLOW}
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be among {', '.join((*KINDS, SLOW))}")


class EmulatorApp:
    """An emulator behind the shared harness.

    Every request is counted in a sliding one-second window (:meth:`stats`, also at
    ``GET /__emulator__/stats``) and against each of ``rate_limits`` (by default the
    emulator's documented ones). With ``enforce_rate_limits`` a request above a limit is
    answered 429 and not applied; without, the limits are only measured. ``clock``
    defaults to the emulator's :meth:`Emulator.monotonic`.
    """

    def __init__(
        self,
        emulator: Emulator,
        faults: Faults | None = None,
        *,
        rate_limits: Sequence[WindowLimit] | None = None,
        enforce_rate_limits: bool = True,
        clock: Callable[[], float] | None = None,
        latency: float = 0.0,
    ) -> None:
        if latency < 0:
            raise ValueError("latency must not be negative")
        self.latency = latency
        """Seconds every answer waits before it is sent (a platform far away); requests
        are served concurrently meanwhile."""
        self.emulator = emulator
        self.faults = faults or Faults()
        self._random = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self.faults_injected: dict[str, int] = dict.fromkeys((*KINDS, SLOW), 0)
        self.rate_limits: tuple[WindowLimit, ...] = tuple(
            emulator.rate_limits() if rate_limits is None else rate_limits
        )
        self.enforce_rate_limits = enforce_rate_limits
        self.clock = clock or emulator.monotonic
        self._reset_stats()

    def _reset_stats(self) -> None:
        self._all = RateWindow(1.0)
        self._windows = [RateWindow(limit.window) for limit in self.rate_limits]
        self.answered_429 = 0

    def stats(self) -> dict[str, Any]:
        """Requests seen, the most in any one-second window, the 429s answered (faults,
        limits and the emulator's own), and each rate limit's window."""
        with self._lock:
            return {
                "requests": self._all.count,
                "max_requests_per_second": self._all.max_in_window,
                "answered_429": self.answered_429,
                "enforce_rate_limits": self.enforce_rate_limits,
                "rate_limits": [
                    {
                        "name": limit.name,
                        "limit": limit.limit,
                        "window": limit.window,
                        "requests": window.count,
                        "max_in_window": window.max_in_window,
                        "rejected": window.rejected,
                    }
                    for limit, window in zip(self.rate_limits, self._windows, strict=True)
                ],
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._reset_stats()

    def _over_limit(self, request: httpx.Request, now: float) -> httpx.Response | None:
        """Count ``request`` in its limit's window; a 429 when enforcing and it is full."""
        for limit, window in zip(self.rate_limits, self._windows, strict=True):
            if not limit.covers(request):
                continue
            if self.enforce_rate_limits and window.current(now) >= limit.limit:
                window.rejected += 1
                return httpx.Response(
                    429, text=limit.message, headers={"Content-Type": "text/plain"}
                )
            window.add(now)
            return None
        return None

    def _draw(self) -> str | None:
        if self.faults.rate <= 0:
            return None
        if self._random.random() >= self.faults.rate:
            return None
        kind = self._random.choice(self.faults.kinds)
        self.faults_injected[kind] += 1
        return kind

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith(INSPECT_PREFIX):
            return self._inspect(request)
        with self._lock:
            response, fault = self._answer(request)
            if response.status_code == 429:
                self.answered_429 += 1
        if fault == "lost":
            raise LostResponse("response lost after the request was applied", request=request)
        if fault == SLOW:
            time.sleep(self.faults.slow_seconds)
        if self.latency:
            time.sleep(self.latency)
        return response

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        now = self.clock()
        self._all.add(now)
        limited = self._over_limit(request, now)
        if limited is not None:
            return limited, None
        fault = self._draw()
        if fault == "429":
            return json_response(429, {"error": "too many requests (emulated fault)"}), fault
        if fault == "429-hinted":
            hinted = json_response(
                429,
                {"error": "too many requests (emulated fault)"},
                {"Retry-After": self.faults.retry_after},
            )
            return hinted, fault
        if fault in ("500", "503"):
            return json_response(int(fault), {"error": "server error (emulated fault)"}), fault
        if fault == "drop":
            raise DroppedConnection("connection closed by the emulator", request=request)
        return self.emulator.handle(request), fault

    def _inspect(self, request: httpx.Request) -> httpx.Response:
        route = request.url.path[len(INSPECT_PREFIX) :]
        with self._lock:
            if route == "contacts" and request.method == "GET":
                return json_response(200, self.emulator.contacts())
            if route == "reset" and request.method == "POST":
                self.emulator.reset()
                return json_response(200, {"reset": True})
            if route == "faults" and request.method == "GET":
                return json_response(200, self.faults_injected)
        if route == "stats" and request.method == "GET":
            return json_response(200, self.stats())
        if route == "stats/reset" and request.method == "POST":
            self.reset_stats()
            return json_response(200, {"reset": True})
        return json_response(404, {"error": f"no emulator route {route!r}"})


class EmulatorTransport(httpx.MockTransport):
    """Mount an :class:`EmulatorApp` in an ``httpx.Client`` or ``httpx.AsyncClient``.

    A ``MockTransport``, so HTTP recorders that hook httpx's transports (vcrpy)
    record the emulator's traffic like any other.
    """

    def __init__(self, app: EmulatorApp) -> None:
        super().__init__(app)
        self.app = app


def _address(server: Any) -> tuple[str, int]:
    host, port = server.server_address[:2]
    return str(host), int(port)


def _handler(app: EmulatorApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle's algorithm the body
        # waits for the client's delayed ACK (~40 ms a response on loopback).
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host, port = _address(self.server)
            request = httpx.Request(
                self.command,
                f"http://{host}:{port}{self.path}",
                headers=list(self.headers.items()),
                content=body,
            )
            try:
                response = app(request)
            except httpx.TransportError:
                # Dropped or lost: close the socket without a response.
                self.close_connection = True
                return
            response.read()
            self.send_response(response.status_code)
            for name, value in response.headers.multi_items():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # request lines may carry ids; stay quiet

    return Handler


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: EmulatorApp) -> None:
        super().__init__(address, _handler(app))
        self.app = app
        """The served app: its :meth:`EmulatorApp.stats` are the server's request rates."""


def serve(app: EmulatorApp, host: str = "127.0.0.1", port: int = 0) -> LoopbackServer:
    """Bind ``app`` on loopback (port 0 picks a free one); call ``serve_forever`` to run."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("emulators only listen on loopback")
    return LoopbackServer((host, port), app)


def serve_in_thread(app: EmulatorApp, host: str = "127.0.0.1") -> tuple[LoopbackServer, str]:
    """Start ``app`` on a free loopback port in a daemon thread; returns the server and its URL."""
    server = serve(app, host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bound_host, port = _address(server)
    return server, f"http://{bound_host}:{port}"


EmulatorFactory = Callable[[object | None], Emulator]
