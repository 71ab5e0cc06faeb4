"""An in-memory Yespo, following Yespo's documentation rather than our adapter.

Documented behaviour it reproduces (sources: Yespo's API reference and guides):

- HTTP Basic auth; the password is the API key, the user name is ignored. Else 401.
- Rate windows (D13), enforced by :class:`~contactsync.EmulatorApp` unless told
  otherwise: 50 requests per second for the search ``GET /api/v1/contacts``, and one
  budget of 200 requests per second shared by every other method. Above them: 429.
- Successful answers are ``application/json; charset=UTF-8`` as the spec documents, the
  ``string`` bodies (PUT, DELETE by id, attach, detach) as a JSON string; lists the spec
  documents as arrays (``GET /groups``, the import ``mapping``) are always arrays.
- ``GET /api/v1/groups`` pages with ``startindex`` (1-based) and ``maxrows`` (≤ 500).
- ``POST /api/v1/contact``, ``PUT /api/v1/contact/{id}`` and ``POST /api/v1/contact/subscribe``
  repeated identically within 60 s: 409, not applied.
- Single upsert: by ``externalCustomerId`` (found → update, deleted → restored, absent →
  created), else by email or phone (most recently updated match).
- Bulk upsert (≤ 3000): external id first, then ``dedupeOn``; an unknown external id
  with a matching email/phone is written onto the match; among several matches the
  most recently updated is used; a match without an external id adopts the request's;
  if every match has a different external id a new contact is created; a deleted
  contact is skipped unless ``restoreDeleted``; the ``dedupeOn`` field is never
  updated; without ``contactFields`` every standard field is written and those the
  contact did not carry become null; only custom fields in ``customFieldsIDs`` are
  written on existing contacts. Invalid contacts come back in ``failedContacts``,
  a single one as an object. ``contactFields`` values outside the spec's enum refuse
  the request (400). The import is asynchronous: its session answers ``STARTED``,
  then ``IMPORTING``, for ``import_polls`` status polls, and the contacts are written
  only when it completes (then ``FINISHED`` with the ``mapping`` array of dedupe
  values to contact ids), so sessions completed out of order apply out of order.
- Segment detach with no ids removes every contact from the segment.

Where the documentation is silent, the choice is written next to the code.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import httpx

from contactsync.testing import Emulator, RecordStore, WindowLimit, json_response

DEMO_API_KEY = "yespo-demo-key"
"""The API key every Yespo emulator accepts (never a real key)."""

RATE_LIMIT = 200
SEARCH_RATE_LIMIT = 50
PAGE_LIMIT = 500
REPEAT_WINDOW = 60.0
BULK_LIMIT = 3000
NAME_LIMIT = 40
STANDARD_FIELDS = (
    "firstName", "lastName", "contactKey", "languageCode", "timeZone", "email", "sms",
    "address", "town", "region", "postcode", "externalCustomerId",
)  # fmt: skip
# The spec's contactFields item enum (D9: listed twice there), deduplicated. Values the
# emulator keeps no data for (push tokens, orders) are accepted and change nothing.
CONTACT_FIELDS_ENUM = frozenset({*STANDARD_FIELDS, "mobilepush", "webpush", "ordersInfo"})
_ADDRESS_PARTS = ("address", "town", "region", "postcode")
_INDEXED = ("externalCustomerId", "email", "sms", "firstName", "lastName")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9]{6,16}$")
_DEDUPE_FIELDS = {
    "email": ("email",),
    "sms": ("sms",),
    "email_or_sms": ("email", "sms"),
    "id": (),
    "externalCustomerId": ("externalCustomerId",),
    "push": (),
    "fieldId": (),
}

DEFAULT_FIELDS: tuple[dict[str, Any], ...] = (
    {"id": 1001, "name": "Loyalty level", "type": "COMBOBOX",
     "possibleValues": ["bronze", "silver", "gold"]},
    {"id": 1002, "name": "Visits", "type": "NUMBER"},
    {"id": 1003, "name": "Member since", "type": "DATE"},
    {"id": 1004, "name": "Notes", "type": "TEXTAREA"},
)  # fmt: skip


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _text(status: int, message: str) -> httpx.Response:
    # Errors: the spec documents no body, the guide "may carry a text explanation".
    return httpx.Response(status, text=message, headers={"Content-Type": "text/plain"})


def _ok(message: str = "OK") -> httpx.Response:
    # The spec's 200 for PUT / DELETE by id / attach / detach: a JSON ``string``.
    return json_response(200, message)


class YespoEmulator(Emulator):
    def __init__(
        self,
        api_keys: Iterable[str] = (DEMO_API_KEY,),
        fields: Iterable[Mapping[str, Any]] = DEFAULT_FIELDS,
        clock: Callable[[], float] = time.monotonic,
        import_polls: int = 2,
    ) -> None:
        """``import_polls``: how many status polls a bulk import session answers in
        progress (``STARTED`` first, then ``IMPORTING``) before it is applied; 0 applies
        it on submission (its first poll answers ``FINISHED``)."""
        if import_polls < 0:
            raise ValueError("import_polls must be 0 or more")
        self.api_keys: frozenset[str] = frozenset(api_keys)
        self.field_definitions = [dict(f) for f in fields]
        self.clock = clock
        self.import_polls = import_polls
        self.reset()

    def rate_limits(self) -> Sequence[WindowLimit]:
        return (
            WindowLimit(
                SEARCH_RATE_LIMIT,
                name="search",
                methods=frozenset({"GET"}),
                path="/api/v1/contacts",
                message="Too many requests: more than 50 requests per 1 second",
            ),
            WindowLimit(
                RATE_LIMIT,
                name="shared",
                message="Too many requests: more than 200 requests per 1 second",
            ),
        )

    def monotonic(self) -> float:
        return self.clock()

    # --- state ------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget contacts, sessions and the unsubscribed list; segments stay, emptied."""
        self.records: RecordStore[int, dict[str, Any]] = RecordStore()
        self._deleted: set[int] = set()
        self._index: dict[tuple[str, str], set[int]] = {}
        kept = getattr(self, "segments", {})
        self.segments: dict[int, dict[str, Any]] = {
            k: {**v, "members": set()} for k, v in kept.items()
        }
        self.unsubscribed: set[str] = set()
        self.sessions: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(100001)
        self._segment_ids = itertools.count(501 + len(self.segments))
        self._seq = itertools.count(1)
        self._repeats: dict[str, float] = {}

    def contacts(self) -> list[dict[str, Any]]:
        return [self._read(r) for r in self.records.values() if not r["deleted"]]

    def segment(self, name: str) -> dict[str, Any]:
        """The segment named ``name``, created (as a static list) when missing."""
        for seg in self.segments.values():
            if seg["name"] == name:
                return seg
        seg = {"id": next(self._segment_ids), "name": name, "type": "Static", "members": set()}
        self.segments[seg["id"]] = seg
        return seg

    def _read(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        """A record in the shape of Yespo's ``Contact``."""
        out: dict[str, Any] = {"id": rec["id"]}
        for key in (
            "firstName",
            "lastName",
            "externalCustomerId",
            "languageCode",
            "timeZone",
            "contactKey",
        ):
            if rec.get(key) is not None:
                out[key] = rec[key]
        out["channels"] = [
            {"type": kind, "value": rec[kind]} for kind in ("email", "sms") if rec.get(kind)
        ]
        address = {k: rec[k] for k in _ADDRESS_PARTS if rec.get(k) is not None}
        if address:
            out["address"] = address
        if rec["fields"]:
            out["fields"] = [{"id": k, "value": v} for k, v in sorted(rec["fields"].items())]
        out["groups"] = [
            {"id": s["id"], "name": s["name"], "type": s["type"]}
            for s in self.segments.values()
            if rec["id"] in s["members"]
        ]
        return out

    # --- transport --------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return _text(401, "Unauthorized")
        now = self.clock()
        try:
            return self._route(request, now)
        except _Refused as refused:
            return _text(400, refused.message)

    def _authorized(self, request: httpx.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            _, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except ValueError:
            return False
        return password in self.api_keys

    def _route(self, request: httpx.Request, now: float) -> httpx.Response:
        method, path = request.method, request.url.path.rstrip("/")
        query = request.url.params
        body = json.loads(request.content) if request.content else None
        parts = path.split("/")
        if path == "/api/v1/contact" and method == "POST":
            return self._once(request, now, lambda: self._add_contact(body))
        if path == "/api/v1/contact/subscribe" and method == "POST":
            return self._once(request, now, lambda: self._subscribe(body))
        if path == "/api/v1/contact" and method == "DELETE":
            return self._delete(self._by_external(query.get("externalCustomerId", "")), query)
        if path.startswith("/api/v1/contact/") and len(parts) == 5 and parts[4].isdigit():
            contact_id = int(parts[4])
            if method == "PUT":
                return self._once(request, now, lambda: self._update_contact(contact_id, body))
            if method == "GET":
                rec = self.records.get(contact_id)
                if rec is None or rec["deleted"]:
                    return _text(404, "Contact not found")
                return json_response(200, self._read(rec))
            if method == "DELETE":
                return self._delete(self.records.get(contact_id), query)
        if path == "/api/v1/contacts" and method == "POST":
            return self._bulk(body)
        if path == "/api/v1/contacts" and method == "GET":
            return self._search(query)
        if path.startswith("/api/v1/importstatus/") and method == "GET":
            return self._import_status(unquote(parts[-1]))
        if path == "/api/v1/groups" and method == "GET":
            name = query.get("name", "").lower()
            start, rows = _page(query)
            found = (
                {"id": s["id"], "name": s["name"], "type": s["type"]}
                for s in self.segments.values()
                if name in s["name"].lower()
            )
            return json_response(200, list(itertools.islice(found, start, start + rows)))
        if (len(parts) == 7 and parts[3] == "group" and parts[5] == "contacts"
                and parts[6] in ("attach", "detach") and method == "POST"):  # fmt: skip
            return self._segment_members(int(parts[4]), parts[6], body or {})
        if path == "/api/v1/addressbooks" and method == "GET":
            return json_response(200, self._address_books())
        if path in ("/api/v1/emails/unsubscribed/add", "/api/v1/emails/unsubscribed/delete"):
            emails = {str(e).strip().lower() for e in (body or {}).get("emails", [])}
            if path.endswith("add"):
                self.unsubscribed |= emails
            else:
                self.unsubscribed -= emails
            return _ok()  # "default response", application/json without a schema
        return _text(405 if path.startswith("/api/") else 404, "Method not allowed")

    def _once(
        self, request: httpx.Request, now: float, apply: Callable[[], httpx.Response]
    ) -> httpx.Response:
        # "Repeated request within 1 minute" (409). Identical = same method, path and body.
        digest = hashlib.sha256(
            request.method.encode() + request.url.raw_path + b"\0" + request.content
        ).hexdigest()
        last = self._repeats.get(digest)
        if last is not None and now - last < REPEAT_WINDOW:
            return _text(409, "Conflict: repeated request within 1 minute")
        response = apply()
        if response.is_success:
            self._repeats[digest] = now
        return response

    # --- single contact ---------------------------------------------------------------

    def _incoming(self, contact: Any) -> dict[str, Any]:
        """The standard and custom values a request's ``Contact`` carries (invalid → refused)."""
        if not isinstance(contact, Mapping):
            raise _Refused("contact must be an object")
        values: dict[str, Any] = {}
        for key in ("firstName", "lastName"):
            name = contact.get(key)
            if name is not None:
                if not isinstance(name, str) or len(name) > NAME_LIMIT or name.strip().isdigit():
                    raise _Refused(f"{key} is invalid")
                values[key] = name
        channels = contact.get("channels")
        if not isinstance(channels, list) or not channels:
            raise _Refused("channels: at least one channel is required")
        for channel in channels:
            kind, value = channel.get("type"), channel.get("value")
            if kind == "email":
                if not isinstance(value, str) or not _EMAIL.match(value):
                    raise _Refused("email is invalid")
                values["email"] = value
            elif kind == "sms":
                if not isinstance(value, str) or not _PHONE.match(value):
                    raise _Refused("sms is invalid")
                values["sms"] = value
            elif kind not in ("viber", "mobilepush", "webpush", "appinbox", "widget", "inapp"):
                raise _Refused(f"unknown channel type {kind!r}")
        for key in ("externalCustomerId", "languageCode", "timeZone", "contactKey"):
            if contact.get(key) is not None:
                values[key] = str(contact[key])
        address = contact.get("address") or {}
        for key in _ADDRESS_PARTS:
            if address.get(key) is not None:
                values[key] = str(address[key])
        fields: dict[int, str] = {}
        for field in contact.get("fields") or []:
            field_id = field.get("id")
            if isinstance(field_id, bool) or not isinstance(field_id, int):
                raise _Refused("fields[].id must be an integer")
            fields[field_id] = str(field.get("value"))
        values["fields"] = fields
        return values

    def _new(self, values: Mapping[str, Any], *, confirmed: bool = True) -> dict[str, Any]:
        rec: dict[str, Any] = dict.fromkeys(STANDARD_FIELDS)
        rec.update(id=next(self._ids), fields={}, deleted=False, confirmed=confirmed)
        self.records[rec["id"]] = rec
        self._merge(rec, values)
        return rec

    def _merge(self, rec: dict[str, Any], values: Mapping[str, Any]) -> None:
        # Partial-update semantics of the single-contact methods are undocumented:
        # the emulator leaves alone what a request does not carry.
        for key, value in values.items():
            if key == "fields":
                rec["fields"].update(value)
            else:
                rec[key] = value
        rec["deleted"] = False
        self._deleted.discard(rec["id"])
        rec["seq"] = next(self._seq)
        self._reindex(rec)

    # Indexes by external id, email, phone digits and names, kept current on every write:
    # a request touches only the records it matches, however many are stored.

    def _reindex(self, rec: dict[str, Any]) -> None:
        for key, value in rec.get("_keys", ()):
            self._index.get((key, value), set()).discard(rec["id"])
        keys = tuple((key, _norm(key, rec[key])) for key in _INDEXED if rec.get(key))
        for key_value in keys:
            self._index.setdefault(key_value, set()).add(rec["id"])
        rec["_keys"] = keys

    def _by_external(self, external_id: str) -> dict[str, Any] | None:
        if not external_id:
            return None
        ids = self._index.get(("externalCustomerId", external_id), set())
        return self.records[min(ids)] if ids else None

    def _latest(self, candidates: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
        return max(candidates, key=lambda r: r["seq"], default=None)

    def _matching(self, keys: Iterable[str], values: Mapping[str, Any]) -> list[dict[str, Any]]:
        ids: set[int] = set()
        for key in keys:
            value = values.get(key)
            if value is not None:
                ids |= self._index.get((key, _norm(key, value)), set())
        return [self.records[i] for i in sorted(ids) if not self.records[i]["deleted"]]

    def _add_contact(self, body: Any) -> httpx.Response:
        values = self._incoming(body)
        ext = values.get("externalCustomerId")
        if ext:
            rec = self._by_external(ext)  # deleted ones included: they are restored
        else:
            rec = self._latest(self._matching(("email", "sms"), values))
        if rec is None:
            rec = self._new(values)
        else:
            self._merge(rec, values)
        return json_response(200, {"id": rec["id"]})

    def _update_contact(self, contact_id: int, body: Any) -> httpx.Response:
        rec = self.records.get(contact_id)
        if rec is None:
            raise _Refused(f"contact {contact_id} not found")
        if not isinstance(body, Mapping):
            raise _Refused("body must be an object")
        values = self._incoming(
            {
                **body,
                "channels": body.get("channels")
                or [{"type": k, "value": rec[k]} for k in ("email", "sms") if rec.get(k)],
            }
        )
        ext = values.get("externalCustomerId")
        owner = self._by_external(ext) if ext else None
        if owner is not None and owner["id"] != contact_id:
            raise _Refused("externalCustomerId belongs to another contact")
        self._merge(rec, values)
        return _ok("Contact updated")

    def _subscribe(self, body: Any) -> httpx.Response:
        if not isinstance(body, Mapping):
            raise _Refused("body must be an object")
        values = self._incoming(body.get("contact"))
        ext = values.get("externalCustomerId")
        rec = self._by_external(ext) if ext else None
        if rec is None:
            rec = self._latest(self._matching(("email", "sms"), values))
        new = rec is None
        if rec is None:
            rec = self._new(values, confirmed=False)
            status = "NEED_CONFIRMATION"
        else:
            self._merge(rec, values)
            email = (rec.get("email") or "").lower()
            status = (
                "BLACKLISTED"
                if email in self.unsubscribed
                else ("ALREADY_SUBSCRIBED" if rec["confirmed"] else "NEED_CONFIRMATION")
            )
        for name in body.get("groups") or []:
            # "Missing segments are created automatically" (subscribe guide).
            self.segment(str(name))["members"].add(rec["id"])
        return json_response(200, {"id": rec["id"], "emailStatus": status, "new": new})

    def _delete(self, rec: dict[str, Any] | None, query: httpx.QueryParams) -> httpx.Response:
        if rec is None:
            return _text(404, "Contact not found")
        if query.get("erase", "false").lower() == "true":
            rec.pop("externalCustomerId", None)
            rec["email"] = rec["sms"] = None
            self._reindex(rec)
            del self.records[rec["id"]]
            self._deleted.discard(rec["id"])
            for seg in self.segments.values():
                seg["members"].discard(rec["id"])
        else:
            rec["deleted"] = True
            self._deleted.add(rec["id"])
        return _ok("Contact deleted")

    def _search(self, query: httpx.QueryParams) -> httpx.Response:
        filters = {
            "externalCustomerId": query.get("externalCustomerId"),
            "email": query.get("email"),
            "sms": query.get("sms"),
            "firstName": query.get("firstname"),
            "lastName": query.get("lastname"),
        }
        if filters["externalCustomerId"] and any(
            v for k, v in filters.items() if k != "externalCustomerId"
        ):
            raise _Refused("externalCustomerId cannot be combined with other conditions")
        start, rows = _page(query)
        given = {k: v for k, v in filters.items() if v is not None}
        if given:
            # The index of one condition gives the candidates; the others filter them.
            key, value = next(iter(given.items()))
            ids = sorted(self._index.get((key, _norm(key, value)), ()))
            candidates = (self.records[i] for i in ids)
            found = [
                r for r in candidates
                if not r["deleted"] and all(_same(k, r.get(k), v) for k, v in given.items())
            ]  # fmt: skip
            total, chosen = len(found), found[start : start + rows]
        else:
            # Without conditions: a page in id order (touches the records before it).
            live = (r for r in self.records.values() if not r["deleted"])
            total = len(self.records) - len(self._deleted)
            chosen = list(itertools.islice(live, start, start + rows))
        page = [
            {
                k: v
                for k, v in self._read(r).items()
                if k in ("id", "firstName", "lastName", "channels", "fields")
            }
            for r in chosen
        ]
        return json_response(200, page, {"TotalCount": str(total)})

    # --- bulk -------------------------------------------------------------------------

    def _bulk(self, body: Any) -> httpx.Response:
        if not isinstance(body, Mapping) or not isinstance(body.get("contacts"), list):
            raise _Refused("contacts is required")
        dedupe_on = body.get("dedupeOn")
        if dedupe_on not in _DEDUPE_FIELDS:
            raise _Refused("dedupeOn is required")
        if len(body["contacts"]) > BULK_LIMIT:
            raise _Refused(f"at most {BULK_LIMIT} contacts per request")
        listed = body.get("contactFields")
        if listed is not None:
            if not isinstance(listed, list):
                raise _Refused("contactFields must be an array")
            unknown = [v for v in listed if v not in CONTACT_FIELDS_ENUM]
            if unknown:
                # The spec's item enum: a value outside it is a bad request, not ignored.
                raise _Refused(f"contactFields: unknown value {unknown[0]!r}")
        custom_ids = body.get("customFieldsIDs")
        if custom_ids is not None and (
            not isinstance(custom_ids, list)
            or any(isinstance(i, bool) or not isinstance(i, int) for i in custom_ids)
        ):
            raise _Refused("customFieldsIDs must be an array of integers")
        failed: list[dict[str, Any]] = []
        accepted: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
        for contact in body["contacts"]:
            try:
                values = self._incoming(contact)
            except _Refused as refused:
                entry = (
                    {k: v for k, v in contact.items() if k != "externalCustomerId"}
                    if isinstance(contact, Mapping)
                    else {}
                )
                failed.append(
                    {**entry, "channels": entry.get("channels") or [], "error": refused.message}
                )
                continue
            accepted.append((values, contact))
        session = uuid.uuid4().hex
        self.sessions[session] = {
            "polls": 0,
            "body": body,
            "accepted": accepted,
            "mapping": None,
        }
        if self.import_polls == 0:
            self._apply_import(self.sessions[session])
        result: dict[str, Any] = {"asyncSessionId": session}
        if failed:
            result["failedContacts"] = failed[0] if len(failed) == 1 else failed
        return json_response(200, result)

    def pending_imports(self) -> list[str]:
        """The ids of import sessions not applied yet."""
        return [k for k, v in self.sessions.items() if v["mapping"] is None]

    def complete_import(self, session_id: str) -> None:
        """Apply a pending import session now, as if its processing had ended."""
        session = self.sessions[session_id]
        if session["mapping"] is None:
            self._apply_import(session)

    def _apply_import(self, session: dict[str, Any]) -> None:
        body = session["body"]
        dedupe_on = body["dedupeOn"]
        listed = body.get("contactFields")
        written = tuple(listed) if listed is not None else STANDARD_FIELDS
        custom_ids = body.get("customFieldsIDs")
        mapping: list[dict[str, Any]] = []
        for values, contact in session["accepted"]:
            rec, dedupe_value = self._bulk_match(values, contact, dedupe_on, body)
            if rec is False:
                continue  # deleted and restoreDeleted is off: skipped
            if rec is None:
                # contactFields / customFieldsIDs limit what is written on existing
                # contacts; the docs say nothing of new ones, which get all they carry.
                rec = self._new(values)
            else:
                self._bulk_update(rec, values, written, custom_ids, dedupe_on)
            for name in body.get("groupNames") or []:
                self.segment(str(name))["members"].add(rec["id"])
            for name in body.get("groupNamesExclude") or []:
                self.segment(str(name))["members"].discard(rec["id"])
            mapping.append({"dedupeValue": dedupe_value, "contactId": rec["id"]})
        session["mapping"] = mapping
        session["accepted"] = []

    def _bulk_match(
        self,
        values: Mapping[str, Any],
        contact: Mapping[str, Any],
        dedupe_on: str,
        body: Mapping[str, Any],
    ) -> tuple[Any, str]:
        ext = values.get("externalCustomerId")
        if ext:
            rec = self._by_external(ext)
            if rec is not None:
                if rec["deleted"] and not body.get("restoreDeleted"):
                    return False, ext
                return rec, ext
        if dedupe_on == "id":
            contact_id = contact.get("id")
            rec = self.records.get(contact_id) if isinstance(contact_id, int) else None
            found = [rec] if rec is not None and not rec["deleted"] else []
            key_value = str(contact.get("id"))
        else:
            keys = _DEDUPE_FIELDS[dedupe_on]
            found = self._matching([k for k in keys if k != "externalCustomerId"], values)
            key_value = next((str(values[k]) for k in keys if values.get(k)), "")
        if ext:
            # Unknown external id (the bulk guide's rules): one match is updated with it;
            # among several, the most recently updated one without an external id takes
            # it; when every match has another external id, a new contact is created.
            if len(found) == 1:
                rec = found[0]
            else:
                rec = self._latest(r for r in found if not r["externalCustomerId"])
            if rec is not None:
                rec["externalCustomerId"] = ext
                self._reindex(rec)
            return rec, ext
        return self._latest(found), key_value

    def _bulk_update(
        self,
        rec: dict[str, Any],
        values: Mapping[str, Any],
        written: Iterable[str],
        custom_ids: Iterable[int] | None,
        dedupe_on: str,
    ) -> None:
        protected = set(_DEDUPE_FIELDS[dedupe_on])
        for key in written:
            if key in protected or key not in STANDARD_FIELDS:
                continue
            if key == "externalCustomerId" and values.get(key) is None:
                continue
            # Listed (or all, when contactFields is omitted) and not sent: set to null.
            rec[key] = values.get(key)
        if custom_ids is not None:
            for field_id in custom_ids:
                if field_id in values["fields"]:
                    rec["fields"][field_id] = values["fields"][field_id]
                else:
                    rec["fields"].pop(field_id, None)
        rec["deleted"] = False
        self._deleted.discard(rec["id"])
        rec["seq"] = next(self._seq)
        self._reindex(rec)

    def _import_status(self, session_id: str) -> httpx.Response:
        session = self.sessions.get(session_id)
        if session is None:
            return _text(404, "Import session not found")
        session["polls"] += 1
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        if session["mapping"] is None and session["polls"] > self.import_polls:
            self._apply_import(session)
        if session["mapping"] is None:
            state = "STARTED" if session["polls"] == 1 else "IMPORTING"
            return json_response(200, {"status": state, "timestamp": stamp})
        return json_response(
            200, {"status": "FINISHED", "timestamp": stamp, "mapping": session["mapping"]}
        )

    # --- segments and fields ----------------------------------------------------------

    def _segment_members(
        self, segment_id: int, action: str, body: Mapping[str, Any]
    ) -> httpx.Response:
        seg = self.segments.get(segment_id)
        if seg is None:
            raise _Refused(f"segment {segment_id} not found")
        ids = [i for i in body.get("contactIds") or [] if i in self.records]
        exts = body.get("externalCustomerIds") or []
        if len(ids) + len(exts) > 500:
            raise _Refused("at most 500 contacts per request")
        for ext in exts:
            rec = self._by_external(str(ext))
            if rec is not None:
                ids.append(rec["id"])
        if action == "attach":
            seg["members"].update(ids)
        elif not body.get("contactIds") and not exts:
            seg["members"].clear()  # documented: a detach without ids empties the segment
        else:
            seg["members"].difference_update(ids)
        return _ok()

    def _address_books(self) -> dict[str, Any]:
        fields = [
            {"id": f["id"], "name": f["name"], "fieldKey": f"f{f['id']}",
             "description": {"type": f["type"], "required": False, "readonly": False,
                             **({"allowedValues": {"possibleValues": f["possibleValues"]}}
                                if f.get("possibleValues") else {})}}
            for f in self.field_definitions
        ]  # fmt: skip
        return {
            "addressBook": {
                "addressBookId": 7200,
                "name": "Main",
                "fieldGroups": {"name": "Custom", "profileKey": "custom",
                                "fields": fields[0] if len(fields) == 1 else fields},
            }
        }  # fmt: skip


def _page(query: httpx.QueryParams) -> tuple[int, int]:
    """``startindex`` (1-based) and ``maxrows`` (at most 500) as a 0-based start and a count."""
    try:
        start = int(query.get("startindex", "1"))
        rows = int(query.get("maxrows", str(PAGE_LIMIT)))
    except ValueError:
        raise _Refused("startindex and maxrows must be integers") from None
    if start < 1 or not 1 <= rows <= PAGE_LIMIT:
        raise _Refused(f"startindex starts at 1; maxrows is 1 to {PAGE_LIMIT}")
    return start - 1, rows


def _norm(key: str, value: Any) -> str:
    if key == "email":
        return str(value).lower()
    if key == "sms":
        return _digits(str(value))
    return str(value)


def _same(key: str, stored: Any, wanted: Any) -> bool:
    if stored is None:
        return False
    if key == "email":
        return str(stored).lower() == str(wanted).lower()
    if key == "sms":
        return _digits(str(stored)) == _digits(str(wanted))
    return bool(stored == wanted)


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())
