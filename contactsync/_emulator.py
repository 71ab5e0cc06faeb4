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
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import httpx

INSPECT_PREFIX = "/__emulator__/"
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return httpx.Response(
        status,
        content=content,
        headers={"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
    )


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


class DroppedConnection(httpx.RemoteProtocolError):
    """The emulator closed the connection without answering."""


class LostResponse(httpx.ReadError):
    """The emulator applied the request, then lost the response."""


KINDS = ("429", "429-hinted", "500", "503", "drop", "lost")
"""The default fault kinds: 429 without and with ``Retry-After``, 500, 503, a dropped
connection, and a request applied whose response is then lost."""
SLOW = "slow"
"""Opt-in kind: the request is applied, then the response waits ``slow_seconds``."""


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
    def __init__(self, emulator: Emulator, faults: Faults | None = None) -> None:
        self.emulator = emulator
        self.faults = faults or Faults()
        self._random = random.Random(self.faults.seed)
        self._lock = threading.Lock()
        self.faults_injected: dict[str, int] = dict.fromkeys((*KINDS, SLOW), 0)

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
            fault = self._draw()
            if fault == "429":
                return json_response(429, {"error": "too many requests (emulated fault)"})
            if fault == "429-hinted":
                return json_response(
                    429,
                    {"error": "too many requests (emulated fault)"},
                    {"Retry-After": self.faults.retry_after},
                )
            if fault in ("500", "503"):
                return json_response(int(fault), {"error": "server error (emulated fault)"})
            if fault == "drop":
                raise DroppedConnection("connection closed by the emulator", request=request)
            response = self.emulator.handle(request)
        if fault == "lost":
            raise LostResponse("response lost after the request was applied", request=request)
        if fault == SLOW:
            time.sleep(self.faults.slow_seconds)
        return response

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


def serve(app: EmulatorApp, host: str = "127.0.0.1", port: int = 0) -> LoopbackServer:
    """Bind ``app`` on loopback (port 0 picks a free one); call ``serve_forever`` to run."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("emulators only listen on loopback")
    return LoopbackServer((host, port), _handler(app))


def serve_in_thread(app: EmulatorApp, host: str = "127.0.0.1") -> tuple[LoopbackServer, str]:
    """Start ``app`` on a free loopback port in a daemon thread; returns the server and its URL."""
    server = serve(app, host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bound_host, port = _address(server)
    return server, f"http://{bound_host}:{port}"


EmulatorFactory = Callable[[object | None], Emulator]
