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
