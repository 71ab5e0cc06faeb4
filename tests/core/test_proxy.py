"""Both clients reach the network through the proxy the environment names, as httpx's
own clients do (HTTP_PROXY / HTTPS_PROXY / ALL_PROXY, NO_PROXY)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from contactsync import AsyncClient, Client, Status
from contactsync._loop import network_transport
from contactsync.testing import EmulatorApp
from tests.fakeprovider import FakeEmulator, contacts, tenant_config

# Nothing listens here: a request that reaches it directly fails to connect (at once:
# a short retry budget).
UNREACHABLE = "http://127.0.0.1:9"
HTTP = {"max_retries": 0, "retry_for": 0.5}


class Proxy:
    """A plain HTTP proxy on loopback that answers from a fake platform, noting the
    absolute URL of every request it was asked to forward."""

    def __init__(self) -> None:
        self.app = EmulatorApp(FakeEmulator({"fake-demo-key"}))
        self.asked: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy.asked.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = urlsplit(self.path)
                request = httpx.Request(
                    "POST",
                    f"http://fake{target.path}",
                    headers=list(self.headers.items()),
                    content=body,
                )
                response = proxy.app(request)
                response.read()
                self.send_response(response.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    running = Proxy()
    monkeypatch.setenv("HTTP_PROXY", running.url)
    yield running
    running.close()


def test_the_sync_client_goes_through_the_environments_proxy(proxy: Proxy) -> None:
    with Client(tenant_config(base_url=UNREACHABLE, http=HTTP), "t") as client:
        outcomes = list(client.upsert_many(contacts(3)))
    assert {o.status for o in outcomes} == {Status.CREATED}
    assert proxy.asked
    assert all(url.startswith(UNREACHABLE + "/") for url in proxy.asked)
    assert len(proxy.app.emulator.contacts()) == 3


def test_the_async_client_goes_through_it_too(proxy: Proxy) -> None:
    async def run() -> list[Status]:
        async with AsyncClient(tenant_config(base_url=UNREACHABLE, http=HTTP), "t") as client:
            return [o.status async for o in client.upsert_many(list(contacts(2)))]

    assert asyncio.run(run()) == [Status.CREATED, Status.CREATED]
    assert proxy.asked


def test_no_proxy_sends_directly(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert network_transport(UNREACHABLE) is httpx.HTTPTransport
    with Client(tenant_config(base_url=UNREACHABLE, http=HTTP), "t") as client:
        outcomes = list(client.upsert_many(contacts(1)))
    assert outcomes[0].status is Status.FAILED  # nothing listens there, and no proxy
    assert proxy.asked == []


def test_without_a_proxy_the_transport_is_httpxs(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert network_transport("https://api.example.com") is httpx.HTTPTransport
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert network_transport("https://api.example.com") is not httpx.HTTPTransport
    assert network_transport("http://127.0.0.1:1") is httpx.HTTPTransport  # http: none set
