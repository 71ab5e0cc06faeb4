"""Between the sans-IO :class:`Request` / :class:`Response` and httpx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson

from ._provider import Request, Response
from ._secret import MASK

_JSON_HEADERS = {"Content-Type": "application/json"}


def encode_json(body: Any) -> bytes:
    """Compact UTF-8 JSON. orjson is several times faster on large bulk bodies; the
    standard library takes what it refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def to_httpx(client: httpx.Client | httpx.AsyncClient, request: Request) -> httpx.Request:
    content = None if request.json is None else encode_json(request.json)
    headers = {**_JSON_HEADERS, **request.headers} if content is not None else request.headers
    return client.build_request(request.method, request.path, content=content, headers=headers)


class Wire:
    """Sends the engine's requests straight through the tenant's transport.

    ``httpx.AsyncClient.send`` does more per request than the engine needs, and in a
    run of one request per contact against a fast server that was about a fifth of
    the run's CPU time (profiled): the base URL merged anew for every request, the
    cookie jar read from every response, the redirect loop. Here the URL of each path
    is worked out once, by the client itself, and the client's own default headers,
    timeout and auth are used as they are. Two differences, both wanted: redirects
    are never followed (as the clients were set up), and no cookie a platform sets
    is kept and sent with a later request (every platform here authenticates each
    request; a cookie must not carry one contact's session into another's request).
    """

    _MOST_PATHS = 1024

    def __init__(self, client: httpx.AsyncClient, transport: httpx.AsyncBaseTransport) -> None:
        self._client = client
        self._transport = transport
        self._auth = client.auth
        self._extensions = {"timeout": client.timeout.as_dict()}
        self._urls: dict[str, httpx.URL] = {}

    def build(self, request: Request) -> httpx.Request:
        """The httpx request for ``request``, as ``client.build_request`` makes it."""
        content = None if request.json is None else encode_json(request.json)
        url = self._urls.get(request.path)
        if url is None:
            if len(self._urls) >= self._MOST_PATHS:  # paths with ids in them
                self._urls.clear()
            url = self._urls[request.path] = self._client.build_request("GET", request.path).url
        headers = self._client.headers.copy()
        if content is not None:
            headers.update(_JSON_HEADERS)
        headers.update(request.headers)
        return httpx.Request(
            request.method, url, content=content, headers=headers, extensions=self._extensions
        )

    async def send(self, request: httpx.Request) -> httpx.Response:
        """``request`` through the client's auth flow (each step read in full)."""
        if self._auth is None:
            return await self._one(request)
        flow = self._auth.async_auth_flow(request)
        try:
            step = await flow.__anext__()
            while True:
                response = await self._one(step)
                try:
                    step = await flow.asend(response)
                except StopAsyncIteration:
                    return response
        finally:
            await flow.aclose()

    async def _one(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response


def from_httpx(response: httpx.Response) -> Response:
    return Response(response.status_code, response.content, dict(response.headers))


def masked_headers(headers: httpx.Headers, secret: frozenset[str]) -> dict[str, str]:
    return {k: (MASK if k.lower() in secret else v) for k, v in headers.items()}


def signed(request: httpx.Request, auth: httpx.Auth | None) -> httpx.Request:
    """``request`` as its auth would send it (the first step of the auth flow)."""
    if auth is None:
        return request
    flow = auth.sync_auth_flow(request)
    try:
        return next(flow)
    finally:
        flow.close()
