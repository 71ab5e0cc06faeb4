"""Both directions of an emulator run, checked against a platform's published OpenAPI
document with openapi-core.

:class:`Capture` wraps an emulator's transport and keeps every request the provider
sent with the response the emulator gave; :meth:`Contract.violations` validates each
pair (request: path, query, headers, security, body; response: status, content type,
body) and names every violation.

Spec defects are patched here, narrowly, each with its source; nothing else is
skipped.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import httpx
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.providers.spec import SPECS

INSPECT_PREFIX = "/__emulator__/"


class OpenApiRequest:
    """An ``httpx.Request`` seen through openapi-core's request protocol."""

    def __init__(self, request: httpx.Request, host_url: str | None = None) -> None:
        self._request = request
        self._host_url = host_url or f"{request.url.scheme}://{request.url.netloc.decode()}"
        query = parse_qsl(request.url.query.decode(), keep_blank_values=True)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )

    @property
    def host_url(self) -> str:
        return self._host_url

    @property
    def path(self) -> str:
        return self._request.url.path

    @property
    def method(self) -> str:
        return self._request.method.lower()

    @property
    def body(self) -> bytes | None:
        return self._request.content or None

    @property
    def content_type(self) -> str:
        return str(self._request.headers.get("Content-Type", ""))


class OpenApiResponse:
    """An ``httpx.Response`` seen through openapi-core's response protocol."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def content_type(self) -> str:
        # As sent: openapi-core matches media-type parameters exactly, and Yespo's spec
        # spells them "charset=UTF-8" (charset values are case-insensitive, RFC 9110).
        return str(self._response.headers.get("Content-Type", ""))

    @property
    def headers(self) -> Headers:
        return Headers(list(self._response.headers.items()))

    @property
    def data(self) -> bytes | None:
        return self._response.content or None


class Capture(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Hands every request to ``inner`` and keeps it with the response it got."""

    def __init__(self, inner: httpx.BaseTransport | httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def _keep(self, request: httpx.Request, response: httpx.Response) -> None:
        if not request.url.path.startswith(INSPECT_PREFIX):
            self.exchanges.append((request, response))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        assert isinstance(self.inner, httpx.BaseTransport)
        response = self.inner.handle_request(request)
        response.read()
        self._keep(request, response)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        assert isinstance(self.inner, httpx.AsyncBaseTransport)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self._keep(request, response)
        return response


# ``format: email`` is RFC 5322's addr-spec, which is ASCII (an internationalized domain
# travels IDNA-encoded). jsonschema's own check only looks for an "@"; this one is
# loose on the local part but refuses any non-ASCII character and a dotless domain.
_ADDR_SPEC = re.compile(r"^[\x21-\x3f\x41-\x7e]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def is_ascii_email(value: object) -> bool:
    return not isinstance(value, str) or bool(_ADDR_SPEC.match(value))


def _describe(error: Exception) -> str:
    """One line per problem: the openapi-core error and each schema error under it."""
    text = str(error)
    cause = error.__cause__
    schema_errors = list(getattr(cause, "schema_errors", None) or [])
    if not schema_errors:
        return text
    parts = []
    for schema_error in schema_errors:
        where = "/".join(str(p) for p in getattr(schema_error, "path", ())) or "<root>"
        parts.append(f"{where}: {getattr(schema_error, 'message', schema_error)}")
    return f"{type(error).__name__}: " + "; ".join(parts)


class Contract:
    """One OpenAPI document (patched by ``fix``), validating captured exchanges."""

    def __init__(
        self,
        document: dict[str, Any],
        fix: Callable[[dict[str, Any]], None] | None = None,
        host_url: str | None = None,
    ) -> None:
        self.document = copy.deepcopy(document)
        if fix is not None:
            fix(self.document)
        self.api = OpenAPI.from_dict(
            self.document, config=Config(extra_format_validators={"email": is_ascii_email})
        )
        self.host_url = host_url

    def request_violations(self, request: httpx.Request) -> list[str]:
        wrapped = OpenApiRequest(request, self.host_url)
        return [
            f"{request.method} {request.url.path}: {_describe(e)}"
            for e in self.api.iter_request_errors(wrapped)
        ]

    def response_violations(self, request: httpx.Request, response: httpx.Response) -> list[str]:
        wrapped = OpenApiRequest(request, self.host_url)
        return [
            f"{request.method} {request.url.path} -> {response.status_code}: {_describe(e)}"
            for e in self.api.iter_response_errors(wrapped, OpenApiResponse(response))
        ]

    def violations(
        self, exchanges: Iterable[tuple[httpx.Request, httpx.Response]]
    ) -> tuple[list[str], list[str]]:
        """Every request violation and every response violation, in order."""
        requests: list[str] = []
        responses: list[str] = []
        for request, response in exchanges:
            requests.extend(self.request_violations(request))
            responses.extend(self.response_violations(request, response))
        return requests, responses


def summary(violations: list[str], limit: int = 15) -> str:
    """The distinct violations with their counts, most frequent first."""
    counted = Counter(violations).most_common(limit)
    return "\n".join(f"{n:5d} x {text[:400]}" for text, n in counted)


def _load(name: str) -> dict[str, Any] | None:
    path = SPECS / name
    if not path.exists():
        return None
    document: dict[str, Any] = json.loads(path.read_text())
    return document


# --- documented spec defects, patched narrowly ------------------------------------------


def fix_yespo(document: dict[str, Any]) -> None:
    """Yespo's spec, with the defects api-notes/yespo.md records, and nothing else.

    - D9: ``ContactsBulkUpdate.contactFields`` lists its item enum twice over (fifteen
      values, then fourteen of them again), which OpenAPI's schema (``uniqueItems`` on
      ``enum``) refuses, so no validator builds the document; and it puts a second
      ``enum`` on the *array*, which no array (an enum of strings) can satisfy. The item
      enum is kept with each value once; the array-level enum is dropped.
    - The same duplicate-enum defect, outside the contact schemas:
      ``ContactMessage.channelType`` lists ``email``, ``sms`` and ``viber`` twice. Its
      enum gets each value once (no contact call uses that schema).
    - Section 8 of the notes: ``failedContacts``, ``addressBook``, ``fieldGroups`` and
      ``fields`` are typed ``array`` while their own descriptions say that one element
      comes back as an object, not an array. Those four (and only those) accept either
      shape; every other array (``mapping``, ``GET /groups``) must be an array.
    - D1: the document's only server is ``https://yespo.io`` while the getting-started
      guide (and our default base URL) use ``https://api.yespo.io``: both are listed.
    """
    schemas = document["components"]["schemas"]
    fields = schemas["ContactsBulkUpdate"]["properties"]["contactFields"]
    assert "enum" in fields, "D9 changed: the array-level enum is gone; revisit fix_yespo"
    del fields["enum"]
    items = fields["items"]
    assert len(items["enum"]) != len(set(items["enum"])), "D9 changed: no duplicates left"
    items["enum"] = list(dict.fromkeys(items["enum"]))
    channel_type = schemas["ContactMessage"]["properties"]["channelType"]
    assert len(channel_type["enum"]) != len(set(channel_type["enum"])), "channelType changed"
    channel_type["enum"] = list(dict.fromkeys(channel_type["enum"]))
    for schema, prop in (("ContactBulkUpdateResult", "failedContacts"),
                         ("AddressBooks", "addressBook"), ("AddressBook", "fieldGroups"),
                         ("FieldGroup", "fields")):  # fmt: skip
        listed = schemas[schema]["properties"][prop]
        assert listed["type"] == "array", prop
        assert "1 element" in listed["description"], prop
        item = listed.pop("items")
        del listed["type"]
        listed["oneOf"] = [{"type": "array", "items": item}, item]
    document["servers"] = [{"url": "https://api.yespo.io"}, *document.get("servers", [])]


def fix_gleantap(document: dict[str, Any]) -> None:
    """Gleantap's spec, with the defect api-notes/gleantap.md §6 records.

    - ``created_date`` (``newContact`` request, ``getCustomers`` members) is described
      as ``YYYY-MM-DD HH:MM:SS`` but typed ``format: date-time`` (RFC 3339, with a ``T``
      and an offset). The notes say to follow the description, so the format is dropped
      from those two properties (their type, string, stays).
    """
    paths = document["paths"]
    new_contact = paths["/v2/ExternalApi/newContact"]["post"]["requestBody"]["content"]
    members = paths["/v2/ExternalApi/getCustomers"]["post"]["responses"]["200"]["content"]
    for created in (
        new_contact["application/json"]["schema"]["properties"]["created_date"],
        members["application/json"]["schema"]["properties"]["members"]["items"]["properties"][
            "created_date"
        ],
    ):
        assert created.get("format") == "date-time", "created_date changed; revisit fix_gleantap"
        del created["format"]


@cache
def yespo_contract() -> Contract | None:
    document = _load("yespo.openapi.json")
    return None if document is None else Contract(document, fix_yespo)


@cache
def gleantap_contract() -> Contract | None:
    document = _load("gleantap.openapi.json")
    return None if document is None else Contract(document, fix_gleantap)
