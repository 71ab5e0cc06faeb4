"""The engine sends straight through the transport (``Wire``): the request it builds is
the one ``httpx.AsyncClient`` would build, auth flows run in full, and no cookie a
platform sets rides along on a later request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx
import pytest

from contactsync._provider import Request
from contactsync._wire import Wire, to_httpx


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self, answer: Any = None) -> None:
        self.seen: list[httpx.Request] = []
        self.headers: list[dict[str, str]] = []  # as sent (an auth flow may reuse one request)
        self.answer = answer or (lambda request: httpx.Response(200, json={"ok": True}))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.seen.append(request)
        self.headers.append(dict(request.headers))
        response: httpx.Response = self.answer(request)
        return response


def client(transport: httpx.AsyncBaseTransport, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport,
        base_url="https://api.example.com/base/",
        headers={"User-Agent": "contactsync"},
        timeout=httpx.Timeout(17),
        follow_redirects=False,
        **options,
    )


REQUESTS = [
    Request("POST", "/v1/contacts", json={"a": [1, "é"]}),
    Request("GET", "/api/1.0/contact?action=getContactList&x=a%20b"),
    Request("PUT", "contacts/7", json={"b": None}, headers={"X-Key": "k", "accept": "x/y"}),
    Request("DELETE", "/v1/contacts/8", headers={"content-type": "text/plain"}),
]


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: f"{r.method} {r.path}")
def test_the_request_is_the_one_the_client_builds(request_: Request) -> None:
    recorder = Recorder()
    http = client(recorder)
    wire = Wire(http, recorder)
    for _ in range(2):  # the second from the URL worked out the first time
        built = wire.build(request_)
        expected = to_httpx(http, request_)
        assert built.method == expected.method
        assert built.url == expected.url
        assert built.headers.multi_items() == expected.headers.multi_items()
        assert built.content == expected.content
        assert built.extensions == expected.extensions


def test_a_cookie_the_platform_sets_is_not_sent_back() -> None:
    recorder = Recorder(
        lambda request: httpx.Response(200, headers={"Set-Cookie": "session=one-contact"})
    )
    wire = Wire(client(recorder), recorder)

    async def twice() -> None:
        for _ in range(2):
            response = await wire.send(wire.build(Request("GET", "/v1/contacts/1")))
            assert response.status_code == 200

    asyncio.run(twice())
    assert [h.get("cookie") for h in recorder.headers] == [None, None]


class TokenAuth(httpx.Auth):
    """Sends a stale token, and on 401 a fresh one: a flow of two steps."""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer stale"
        response = yield request
        if response.status_code == 401:
            assert response.content == b"expired"  # read before the flow sees it
            request.headers["Authorization"] = "Bearer fresh"
            yield request


def test_an_auth_flow_runs_every_step() -> None:
    recorder = Recorder(
        lambda request: httpx.Response(
            200 if request.headers["Authorization"] == "Bearer fresh" else 401,
            content=b"done" if request.headers["Authorization"] == "Bearer fresh" else b"expired",
        )
    )
    wire = Wire(client(recorder, auth=TokenAuth()), recorder)
    response = asyncio.run(wire.send(wire.build(Request("POST", "/v1/x", json={}))))
    assert (response.status_code, response.content) == (200, b"done")
    assert response.request.headers["Authorization"] == "Bearer fresh"
    assert [h["authorization"] for h in recorder.headers] == ["Bearer stale", "Bearer fresh"]


class Streamed(httpx.AsyncByteStream):
    def __init__(self) -> None:
        self.closed = False

    async def __aiter__(self) -> AsyncGenerator[bytes, None]:
        yield b'{"ok":'
        yield b" true}"

    async def aclose(self) -> None:
        self.closed = True


def test_the_response_is_read_and_closed() -> None:
    stream = Streamed()
    recorder = Recorder(lambda request: httpx.Response(200, stream=stream))
    wire = Wire(client(recorder), recorder)
    response = asyncio.run(wire.send(wire.build(Request("GET", "/v1/x"))))
    assert response.json() == {"ok": True}
    assert stream.closed
