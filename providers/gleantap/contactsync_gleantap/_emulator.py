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
  integer ``email_optout`` / ``sms_optout``. Every member property is a string or an
  integer as the spec types it: one the contact has no value for is left out, never
  ``null``. ``created_date`` follows its description (``YYYY-MM-DD HH:MM:SS``).
- ``email`` is ``format: email`` (RFC 5322): an address that is not ASCII (a Unicode
  domain not IDNA-encoded, a non-ASCII local part) is refused (400).
- Stored contacts are indexed by ``user_id``, email and phone digits: a request touches
  only the contacts it matches, however many are stored.
- ``optin`` (phone, email, user_id required) starts the SMS double opt-in.

Undocumented choices: emails compare case-insensitively, first names exactly, phones
by their digits; a missing ``tag_action`` adds.

A ``user_id`` that matches nothing: Gleantap's page lists its three rules as
alternatives ("updated when one of these matches") and does not say whether sending a
``user_id`` turns the other two off. The emulator takes the reading under which a
careless client merges strangers, the one adapters must be safe against: by default
(``user_id_falls_back = True``) such a write falls back to the email and phone rules,
and lands on (and takes over) a contact another ``user_id`` holds when the email or
phone and the first name match. ``user_id_falls_back = False`` is the other reading
(a new contact is created), so an adapter can be tested against both.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from contactsync.testing import Emulator, RecordStore, json_response

DEMO_API_KEY = "gleantap-demo-key"
DEMO_SECRET_KEY = "gleantap-demo-secret"
DEMO_APP_ID = "demo-app"
"""Credentials and app every Gleantap emulator accepts (never real ones)."""

# RFC 5322 addr-spec, loosely: printable ASCII before the @, an ASCII (IDNA) domain.
_EMAIL = re.compile(r"^[\x21-\x3f\x41-\x7e]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Invalid(Exception):
    pass


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def _key(name: str, value: Any) -> str:
    if name == "email":
        return str(value).lower()
    if name == "phone":
        return _digits(value)
    return str(value)


def _member(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A ``getCustomers`` member: the spec's types, and no key for a missing value."""
    member: dict[str, Any] = {
        "id": str(rec["_id"]),
        "firstname": str(rec["first_name"]),
        "lastname": str(rec["last_name"]),
    }
    for out, key in (("email", "email"), ("phone", "phone"), ("last_location", "location")):
        if rec.get(key) is not None:
            member[out] = str(rec[key])
    member["email_optout"] = int(rec["email_optout"])
    member["sms_optout"] = int(rec["sms_optout"])
    member["created_date"] = str(rec["created"])
    return member


class GleantapEmulator(Emulator):
    def __init__(self, *, user_id_falls_back: bool = True) -> None:
        self.keys: set[tuple[str, str]] = {(DEMO_API_KEY, DEMO_SECRET_KEY)}
        self.app_ids: set[str] = {DEMO_APP_ID}
        self.user_id_falls_back = user_id_falls_back
        """Whether a ``user_id`` that matches nothing falls back to the email and phone
        rules (see the module docstring: Gleantap does not document it)."""
        self.reset()

    def reset(self) -> None:
        self.records: RecordStore[str, dict[str, Any]] = RecordStore()
        self._index: dict[tuple[str, str], set[str]] = {}
        self._keys: dict[str, tuple[tuple[str, str], ...]] = {}
        self._order: dict[str, int] = {}
        self._ids = itertools.count(1)

    def _reindex(self, rec: Mapping[str, Any]) -> None:
        contact_id = rec["_id"]
        for key in self._keys.get(contact_id, ()):
            self._index.get(key, set()).discard(contact_id)
        keys = tuple(
            (name, _key(name, rec[name])) for name in ("user_id", "email", "phone") if rec.get(name)
        )
        for key in keys:
            self._index.setdefault(key, set()).add(contact_id)
        self._keys[contact_id] = keys

    def _candidates(self, name: str, value: Any) -> list[dict[str, Any]]:
        """Stored contacts whose ``name`` matches ``value``, oldest first."""
        ids = sorted(self._index.get((name, _key(name, value)), ()), key=self._order.__getitem__)
        return [self.records[i] for i in ids]

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
        if body.get("user_id"):
            found = self._candidates("user_id", body["user_id"])
            if found:
                return found[0]
            if not self.user_id_falls_back:
                return None
        first = body["first_name"]
        for name in ("email", "phone"):
            if body.get(name):
                same = [r for r in self._candidates(name, body[name]) if r["first_name"] == first]
                if same or name == "phone":
                    return same[0] if same else None
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
            self._order[rec["_id"]] = len(self._order)
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
        self._reindex(rec)
        return str(rec["_id"])

    def _customers(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        limit = int(body.get("limit") or 1000)
        if limit > 1000:
            raise _Invalid("limit is at most 1000")
        offset = int(body.get("offset") or 0)
        filters = {k: body[k] for k in ("user_id", "email", "phone") if body.get(k)}
        rows: Iterable[dict[str, Any]]
        if body.get("_id"):
            found = self.records.get(str(body["_id"]))
            rows = [] if found is None else [found]
        elif filters:
            name, value = next(iter(filters.items()))
            rows = self._candidates(name, value)
        else:
            rows = self.records.values()  # no filter: the page (touches the rows before it)
        matching = (
            r
            for r in rows
            if all(r.get(k) and _key(k, r[k]) == _key(k, v) for k, v in filters.items())
        )
        return [_member(r) for r in itertools.islice(matching, offset, offset + limit)]

    def _optin(self, body: Mapping[str, Any]) -> str:
        for key in ("phone", "email", "user_id"):
            if not body.get(key):
                raise _Invalid(f"{key} is required")
        for rec in self._candidates("user_id", body["user_id"])[:1]:
            rec["sms_optin_pending"] = True
        return "success"
