"""Validating request bodies against a platform's published OpenAPI document."""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# The platforms' published documents live beside the repository (or where
# CONTACTSYNC_SPECS points); contract tests are skipped without them.
SPECS = Path(
    os.environ.get("CONTACTSYNC_SPECS", Path(__file__).resolve().parents[3] / "shared" / "specs")
)


def _load(name: str) -> dict[str, Any] | None:
    path = SPECS / name
    if not path.exists():
        return None
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def require(spec: OpenApiSpec | None) -> OpenApiSpec:
    """``spec``, or skip the calling test when the document is not available."""
    if spec is None:
        pytest.skip(f"published specs not found in {SPECS} (set CONTACTSYNC_SPECS)")
    return spec


class SpecError(AssertionError):
    pass


class OpenApiSpec:
    """Request-body schemas of one OpenAPI 3.0 document, by method and concrete path."""

    def __init__(
        self, document: dict[str, Any], fix: Callable[[dict[str, Any]], None] | None = None
    ):
        self.document = copy.deepcopy(document)
        if fix is not None:
            fix(self.document)
        self.registry: Registry[Any] = Registry().with_resource(
            "spec", Resource.from_contents(self.document, default_specification=DRAFT4)
        )
        self.routes: list[tuple[str, re.Pattern[str], dict[str, Any]]] = []
        for template, operations in self.document["paths"].items():
            pattern = re.compile("^" + re.sub(r"\{[^}/]+\}", "[^/]+", template) + "/?$")
            for method, operation in operations.items():
                if isinstance(operation, dict):
                    self.routes.append((method.upper(), pattern, operation))

    def operation(self, method: str, path: str) -> dict[str, Any]:
        for route_method, pattern, operation in self.routes:
            if route_method == method and pattern.match(path):
                return operation
        raise SpecError(f"{method} {path} is not an operation of the spec")

    def validate(self, request: httpx.Request) -> None:
        operation = self.operation(request.method, request.url.path)
        content = (operation.get("requestBody") or {}).get("content") or {}
        if not content:
            if request.content:
                raise SpecError(f"{request.method} {request.url.path} takes no body")
            return
        schema = next(iter(content.values()))["schema"]
        body = json.loads(request.content)
        rebased = json.loads(json.dumps(schema).replace('"#/', '"spec#/'))
        validator = jsonschema.Draft4Validator(rebased, registry=self.registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path)
            raise SpecError(
                f"{request.method} {request.url.path} body invalid at {where or '<root>'}: "
                f"{errors[0].message}"
            )


def _fix_yespo(document: dict[str, Any]) -> None:
    # D9: the spec attaches an `enum` of strings to the contactFields *array* itself,
    # which no array can satisfy; the item-level enum is the real constraint.
    fields = document["components"]["schemas"]["ContactsBulkUpdate"]["properties"]["contactFields"]
    fields.pop("enum", None)


@cache
def yespo_spec() -> OpenApiSpec | None:
    document = _load("yespo.openapi.json")
    return None if document is None else OpenApiSpec(document, _fix_yespo)


@cache
def gleantap_spec() -> OpenApiSpec | None:
    document = _load("gleantap.openapi.json")
    return None if document is None else OpenApiSpec(document)


class ValidatingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Validates every request body against ``spec`` (when available), then hands it to ``inner``."""

    def __init__(
        self, spec: OpenApiSpec | None, inner: httpx.BaseTransport | httpx.AsyncBaseTransport
    ):
        self.spec = spec
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if not request.url.path.startswith("/__emulator__/"):
            if self.spec is not None:
                self.spec.validate(request)
            self.requests.append(request)
        assert isinstance(self.inner, httpx.BaseTransport)
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        if not request.url.path.startswith("/__emulator__/"):
            if self.spec is not None:
                self.spec.validate(request)
            self.requests.append(request)
        assert isinstance(self.inner, httpx.AsyncBaseTransport)
        return await self.inner.handle_async_request(request)
