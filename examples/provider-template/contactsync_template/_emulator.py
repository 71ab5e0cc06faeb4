"""Template's documented behaviour, in memory (see the package docstring)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

import httpx

from contactsync.testing import Emulator, RecordStore, json_response

DEMO_API_KEY = "template-demo-key"
_KEYS = ("external_id", "email", "first_name", "last_name")


class TemplateEmulator(Emulator):
    def __init__(self, api_keys: Iterable[str] = (DEMO_API_KEY,)) -> None:
        self._keys = frozenset(api_keys)
        self._records: RecordStore[str, dict[str, Any]] = RecordStore()

    def handle(self, request: httpx.Request) -> httpx.Response:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or key not in self._keys:
            return json_response(401, {"error": "unauthorized"})
        if (request.method, request.url.path) != ("POST", "/contacts"):
            return json_response(404, {"error": "not found"})
        try:
            body = json.loads(request.content)
        except ValueError:
            return json_response(400, {"error": "body is not JSON"})
        if not isinstance(body, dict) or not isinstance(body.get("external_id"), str):
            return json_response(400, {"error": "external_id is required"})
        if set(body) - set(_KEYS) or not all(isinstance(v, str) for v in body.values()):
            return json_response(400, {"error": f"only string keys {', '.join(_KEYS)}"})
        stored = self._records.get(body["external_id"])
        created = stored is None
        record = {"id": uuid.uuid4().hex} if stored is None else stored
        record.update(body)  # an absent key leaves the stored value alone
        self._records[body["external_id"]] = record
        return json_response(200, {"id": record["id"], "created": created})

    def contacts(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._records.values()]

    def reset(self) -> None:
        self._records.clear()
