"""An in-memory Gleantap, following Gleantap's documentation rather than our adapter.

- ``X-API-KEY`` and ``X-SECRET-KEY`` must match a known pair, else 401; ``app_id`` must
  name a known app, else 400.
- ``newContact``: ``app_id``, ``first_name`` and ``last_name`` are required (400). An
  existing contact is updated when, in this order, its ``user_id`` matches, or its
  email and first name match, or its phone and first name match; otherwise a contact
  is created. Any undocumented key is stored as a custom attribute. ``tags`` is a
  comma list applied by ``tag_action`` (``add`` / ``remove``). Answers
  ``{"status": "success", "_id": ...}`` whether it created or updated.
- ``getCustomers`` filters on ``_id``, ``user_id``, ``email``, ``phone`` with
  ``limit`` (≤ 1000) / ``offset``; members carry ``firstname`` / ``lastname`` and
  integer ``email_optout`` / ``sms_optout``.
- ``optin`` (phone, email, user_id required) starts the SMS double opt-in.

Undocumented choices: emails compare case-insensitively, first names exactly, phones
by their digits; a ``user_id`` that matches nothing falls back to the email and phone
rules; a missing ``tag_action`` adds.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from contactsync import Emulator
from contactsync._emulator import json_response

DEMO_API_KEY = "gleantap-demo-key"
DEMO_SECRET_KEY = "gleantap-demo-secret"
DEMO_APP_ID = "demo-app"
"""Credentials and app every Gleantap emulator accepts (never real ones)."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Invalid(Exception):
    pass


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


class GleantapEmulator(Emulator):
    def __init__(self) -> None:
        self.keys: set[tuple[str, str]] = {(DEMO_API_KEY, DEMO_SECRET_KEY)}
        self.app_ids: set[str] = {DEMO_APP_ID}
        self.reset()

    def reset(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def contacts(self) -> list[dict[str, Any]]:
        return [dict(r, tags=sorted(r["tags"])) for r in self.records.values()]

    def handle(self, request: httpx.Request) -> httpx.Response:
        pair = (request.headers.get("X-API-KEY", ""), request.headers.get("X-SECRET-KEY", ""))
        if pair not in self.keys:
            return json_response(
                401, {"status": False, "message": "Unauthorized - Invalid API credentials"}
            )
        prefix = "/v2/ExternalApi/"
        if request.method != "POST" or not request.url.path.startswith(prefix):
            return json_response(404, {"status": "error", "message": "Not found"})
        try:
            body = json.loads(request.content or b"{}")
            if not isinstance(body, dict) or body.get("app_id") not in self.app_ids:
                raise _Invalid("unknown app_id")
            method = request.url.path[len(prefix) :]
            if method == "newContact":
                return json_response(200, {"status": "success", "_id": self._new_contact(body)})
            if method == "getCustomers":
                return json_response(200, {"members": self._customers(body)})
            if method == "optin":
                return json_response(200, {"status": self._optin(body)})
        except (_Invalid, ValueError) as exc:
            return json_response(400, {"status": "error", "message": f"Invalid request: {exc}"})
        return json_response(404, {"status": "error", "message": "Not found"})

    # --- contacts ---------------------------------------------------------------------

    def _match(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        records = list(self.records.values())
        if body.get("user_id"):
            found = next((r for r in records if r.get("user_id") == body["user_id"]), None)
            if found is not None:
                return found
        first = body["first_name"]
        if body.get("email"):
            email = str(body["email"]).lower()
            found = next(
                (
                    r
                    for r in records
                    if str(r.get("email") or "").lower() == email and r["first_name"] == first
                ),
                None,
            )
            if found is not None:
                return found
        if body.get("phone"):
            phone = _digits(body["phone"])
            return next(
                (
                    r
                    for r in records
                    if r.get("phone") and _digits(r["phone"]) == phone and r["first_name"] == first
                ),
                None,
            )
        return None

    def _new_contact(self, body: dict[str, Any]) -> str:
        for key in ("first_name", "last_name"):
            if not isinstance(body.get(key), str) or not body[key].strip():
                raise _Invalid(f"{key} is required")
        if body.get("email") is not None and not _EMAIL.match(str(body["email"])):
            raise _Invalid("email is invalid")
        if body.get("dob") is not None and not _DATE.match(str(body["dob"])):
            raise _Invalid("dob must be YYYY-MM-DD")
        for flag in ("optin_sms", "optout_email"):
            if flag in body and not isinstance(body[flag], bool):
                raise _Invalid(f"{flag} must be a boolean")
        rec = self._match(body)
        if rec is None:
            rec = {
                "_id": f"gt{next(self._ids):06d}",
                "tags": set(),
                "email_optout": 0,
                "sms_optout": 0,
                "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            self.records[rec["_id"]] = rec
        for key, value in body.items():
            if key in ("app_id", "tags", "tag_action"):
                continue
            if key == "optout_email":
                rec["email_optout"] = int(value)
            elif key == "optin_sms":
                rec["sms_optout"] = int(not value)
            else:
                rec[key] = value  # documented fields and custom attributes alike
        if body.get("tags"):
            names = {t.strip() for t in str(body["tags"]).split(",") if t.strip()}
            action = body.get("tag_action") or "add"
            if action == "add":
                rec["tags"] |= names
            elif action == "remove":
                rec["tags"] -= names
            else:
                raise _Invalid("tag_action must be add or remove")
        return str(rec["_id"])

    def _customers(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        limit = int(body.get("limit") or 1000)
        if limit > 1000:
            raise _Invalid("limit is at most 1000")
        offset = int(body.get("offset") or 0)
        rows = list(self.records.values())
        if body.get("_id"):
            rows = [r for r in rows if r["_id"] == body["_id"]]
        if body.get("user_id"):
            rows = [r for r in rows if r.get("user_id") == body["user_id"]]
        if body.get("email"):
            rows = [
                r for r in rows if str(r.get("email") or "").lower() == str(body["email"]).lower()
            ]
        if body.get("phone"):
            rows = [
                r for r in rows if r.get("phone") and _digits(r["phone"]) == _digits(body["phone"])
            ]
        return [
            {
                "id": r["_id"],
                "firstname": r["first_name"],
                "lastname": r["last_name"],
                "email": r.get("email"),
                "phone": r.get("phone"),
                "last_location": r.get("location"),
                "email_optout": r["email_optout"],
                "sms_optout": r["sms_optout"],
                "created_date": r["created"],
            }
            for r in rows[offset : offset + limit]
        ]

    def _optin(self, body: Mapping[str, Any]) -> str:
        for key in ("phone", "email", "user_id"):
            if not body.get(key):
                raise _Invalid(f"{key} is required")
        rec = next((r for r in self.records.values() if r.get("user_id") == body["user_id"]), None)
        if rec is not None:
            rec["sms_optin_pending"] = True
        return "success"
