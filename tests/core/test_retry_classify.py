"""classify_exception: which send errors are retried and which may have been applied.

The table covers every exception class httpx exports; the socket tests below check
the classification against errors httpx really raises on loopback.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpcore
import httpx
import pytest

from contactsync._retry import Failure, classify_exception, is_certificate_error

DATA = Path(__file__).parent / "data"

# type -> (permanent, maybe_applied, kind)
EXPECTED: dict[type[BaseException], tuple[bool, bool, str]] = {
    # Never reached the server: always safe to send again.
    httpx.ConnectError: (False, False, "transport"),
    httpx.ConnectTimeout: (False, False, "timeout"),
    httpx.PoolTimeout: (False, False, "timeout"),
    httpx.ProxyError: (False, False, "transport"),
    # Sent (or partly sent): the response is lost, the platform may have applied it.
    httpx.ReadTimeout: (False, True, "timeout"),
    httpx.WriteTimeout: (False, True, "timeout"),
    httpx.TimeoutException: (False, True, "timeout"),
    httpx.ReadError: (False, True, "transport"),
    httpx.WriteError: (False, True, "transport"),
    httpx.CloseError: (False, True, "transport"),
    httpx.NetworkError: (False, True, "transport"),
    httpx.RemoteProtocolError: (False, True, "transport"),
    httpx.ProtocolError: (False, True, "transport"),
    httpx.TransportError: (False, True, "transport"),
    # Retrying cannot help.
    httpx.LocalProtocolError: (True, False, "transport"),
    httpx.UnsupportedProtocol: (True, False, "transport"),
    httpx.DecodingError: (True, True, "transport"),
    httpx.TooManyRedirects: (True, True, "transport"),
    # Not transport errors at all: a bug or a misuse, never retried, never assumed harmless.
    httpx.RequestError: (True, True, "transport"),
    httpx.HTTPError: (True, True, "transport"),
    httpx.HTTPStatusError: (True, True, "transport"),
    httpx.InvalidURL: (True, True, "transport"),
    httpx.CookieConflict: (True, True, "transport"),
    httpx.StreamError: (True, True, "transport"),
    httpx.StreamConsumed: (True, True, "transport"),
    httpx.StreamClosed: (True, True, "transport"),
    httpx.ResponseNotRead: (True, True, "transport"),
    httpx.RequestNotRead: (True, True, "transport"),
    # The attempt deadline (asyncio.timeout around one attempt) may fire at any phase.
    TimeoutError: (False, True, "timeout"),
    ValueError: (True, True, "transport"),
}


def make(type_: type[BaseException]) -> BaseException:
    request = httpx.Request("POST", "https://api.example.test/api/v1/contact")
    if type_ is httpx.HTTPStatusError:
        return type_("503", request=request, response=httpx.Response(503, request=request))
    if type_ is httpx.StreamError:
        return httpx.StreamError("boom")
    if issubclass(type_, httpx.StreamError):
        return type_()  # type: ignore[call-arg]  # the subclasses take no message
    if issubclass(type_, httpx.RequestError):
        return type_("boom", request=request)
    return type_("boom")


def test_the_table_covers_every_exception_httpx_exports() -> None:
    exported = {
        value
        for name in dir(httpx)
        if isinstance(value := getattr(httpx, name), type) and issubclass(value, Exception)
    }
    assert exported - set(EXPECTED) == set()


@pytest.mark.parametrize("type_", list(EXPECTED), ids=lambda t: t.__name__)
def test_classification(type_: type[BaseException]) -> None:
    failure = classify_exception(make(type_))
    assert (failure.permanent, failure.maybe_applied, failure.kind) == EXPECTED[type_]
    assert failure.exception == type_.__name__
    assert failure.description


def cert_error_like_httpx() -> httpx.ConnectError:
    """The chain httpx builds: httpx.ConnectError from httpcore's, from ssl's."""
    message = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed"
    try:
        try:
            try:
                raise ssl.SSLCertVerificationError(1, message)
            except ssl.SSLError as exc:
                raise httpcore.ConnectError(str(exc)) from exc
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc)) from exc
    except httpx.ConnectError as exc:
        return exc


def test_tls_certificate_failure_is_permanent() -> None:
    failure = classify_exception(cert_error_like_httpx())
    assert failure.permanent
    assert not failure.maybe_applied
    assert "certificate" in failure.description
    assert Failure.from_transport(failure).permanent


def test_tls_certificate_failure_found_by_cause_alone() -> None:
    exc = httpx.ConnectError("handshake failed")
    exc.__cause__ = ssl.SSLCertVerificationError(1, "x")
    assert classify_exception(exc).permanent


def test_tls_certificate_failure_found_by_message_alone() -> None:
    # A replayed or re-raised error may keep only the OpenSSL text.
    exc = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert classify_exception(exc).permanent


def test_other_connect_errors_stay_retryable() -> None:
    exc = httpx.ConnectError("[Errno 111] Connection refused")
    exc.__context__ = ConnectionRefusedError(111, "Connection refused")
    failure = classify_exception(exc)
    assert not failure.permanent
    assert not is_certificate_error(exc)


def test_cyclic_exception_chains_terminate() -> None:
    a = httpx.ConnectError("a")
    b = OSError("b")
    a.__context__ = b
    b.__context__ = a
    assert not classify_exception(a).permanent


# --- against real sockets on loopback -------------------------------------------------


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], int]]:
    """Start a one-connection server running ``handle``; yields its port."""
    threads: list[threading.Thread] = []
    listeners: list[socket.socket] = []

    def start(handle: Callable[[socket.socket], None]) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def run() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError, ssl.SSLError):
                handle(conn)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return int(listener.getsockname()[1])

    yield start
    for listener in listeners:
        listener.close()
    for thread in threads:
        thread.join(timeout=5)


def send(url: str, timeout: float = 5.0) -> BaseException:
    with httpx.Client(timeout=timeout) as client, pytest.raises(httpx.TransportError) as info:
        client.post(url, json={"externalCustomerId": "1"})
    return info.value


def test_real_self_signed_certificate_is_permanent(
    serve: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(DATA / "selfsigned-cert.pem", DATA / "selfsigned-key.pem")

    def handshake(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True):
            pass

    exc = send(f"https://127.0.0.1:{serve(handshake)}/api/v1/contact")
    assert isinstance(exc, httpx.ConnectError)
    assert is_certificate_error(exc)
    failure = classify_exception(exc)
    assert (failure.permanent, failure.maybe_applied) == (True, False)


def test_real_connection_refused_was_never_sent() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    exc = send(f"http://127.0.0.1:{port}/")
    failure = classify_exception(exc)
    assert isinstance(exc, httpx.ConnectError)
    assert (failure.permanent, failure.maybe_applied) == (False, False)


def test_real_read_timeout_may_have_been_applied(
    serve: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    done = threading.Event()

    def swallow(conn: socket.socket) -> None:
        conn.recv(65536)
        done.wait(10)  # read the request, never answer

    port = serve(swallow)
    try:
        exc = send(f"http://127.0.0.1:{port}/", timeout=0.2)
    finally:
        done.set()
    failure = classify_exception(exc)
    assert isinstance(exc, httpx.ReadTimeout)
    assert (failure.permanent, failure.maybe_applied, failure.kind) == (False, True, "timeout")


def test_real_disconnect_after_the_request_may_have_been_applied(
    serve: Callable[[Callable[[socket.socket], None]], int],
) -> None:
    def hang_up(conn: socket.socket) -> None:
        conn.recv(65536)  # read the request, close without a response

    exc = send(f"http://127.0.0.1:{serve(hang_up)}/")
    failure = classify_exception(exc)
    assert isinstance(exc, httpx.RemoteProtocolError)
    assert (failure.permanent, failure.maybe_applied) == (False, True)
