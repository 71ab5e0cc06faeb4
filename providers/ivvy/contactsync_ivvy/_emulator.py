"""An in-memory iVvy, following iVvy's documentation rather than our adapter.

- Every request is IWS-signed: an unknown key or a wrong signature or MD5 is 401; an
  ``IVVY-Date`` more than 5 minutes from the server's UTC time is 401 with
  specificCode 23005 "Request is stale".
- ``addOrUpdateContact``: with ``id`` updates that contact; without, creates one
  (first name, last name and email required), unless ``updateIfExists`` and a contact
  with the same first name, last name and email exists, which is then updated.
  ``groups`` replaces every group of the contact. Statuses: email 1, 2, 3, 5 (4
  "Registering" is read-only), SMS 1 to 4. Custom fields are checked against their type.
- ``getContactList`` filters on any contact property (exact match) with ``perPage`` /
  ``start`` paging; ``getContact``; the subscription group and custom field lists;
  add/remove contacts to a group; ``batch`` run / progress / results (≤ 200 jobs).
- Errors use iVvy's envelope ``{errorCode, specificCode, message}``.

Stored contacts are indexed by the properties a request looks them up by (id,
external id, email, names, phone) and groups keep their member sets: a request touches
only the contacts it matches, however many are stored.

Undocumented choices: without ``updateIfExists`` an existing name + email triple gets a
second contact (the unsafe reading, so adapters are tested against it); a bad
signature is 401 without a specificCode.
"""

from __future__ import annotations

import datetime as dt
import hmac
import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from contactsync.testing import Emulator, RecordStore, json_response

from ._signing import content_md5, signature, string_to_sign

DEMO_API_KEY = "ivvy-demo-key"
DEMO_API_SECRET = "ivvy-demo-secret"
"""Credentials every iVvy emulator accepts (never real ones)."""

STALE_AFTER = dt.timedelta(minutes=5)
MAX_JOBS = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_EMAIL_STATUSES = {1, 2, 3, 5}
_SMS_STATUSES = {1, 2, 3, 4}
_STAMP = "%Y-%m-%d %H:%M:%S"
# Properties getContactList filters are answered from an index for (exact match).
_INDEXED = ("externalId", "email", "firstName", "lastName", "phone")


class _Error(Exception):
    def __init__(self, status: int, message: str, specific: int | None = None) -> None:
        self.status, self.message, self.specific = status, message, specific

    def response(self) -> httpx.Response:
        body: dict[str, Any] = {"errorCode": self.status, "message": self.message}
        if self.specific is not None:
            body["specificCode"] = self.specific
        return json_response(self.status, body)


def _invalid(name: str) -> _Error:
    return _Error(400, f"'{name}' does not validate", 23016)


class IvvyEmulator(Emulator):
    def __init__(self, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self.clock = clock
        self.keys: dict[str, str] = {DEMO_API_KEY: DEMO_API_SECRET}
        self.groups: dict[int, dict[str, Any]] = {}
        self.fields: dict[int, dict[str, Any]] = {}
        self._group_ids = itertools.count(10)
        self.reset()

    # --- state ------------------------------------------------------------------------

    def reset(self) -> None:
        self.records: RecordStore[int, dict[str, Any]] = RecordStore()
        self._index: dict[tuple[str, Any], set[int]] = {}
        self._keys: dict[int, tuple[tuple[str, Any], ...]] = {}
        self._members: dict[int, set[int]] = {}
        self.batches: dict[str, list[dict[str, Any]]] = {}
        self._ids = itertools.count(33884)

    def add_group(self, name: str, group_id: int | None = None) -> int:
        for existing in self.groups.values():
            if existing["groupName"] == name or existing["id"] == group_id:
                return int(existing["id"])
        group_id = group_id if group_id is not None else next(self._group_ids)
        self.groups[group_id] = {"id": group_id, "groupName": name, "tagColour": "#3366cc"}
        self._members[group_id] = {
            contact_id for contact_id, rec in self.records.items() if group_id in rec["groups"]
        }
        return group_id

    def add_field(
        self, field_id: int, field_type: int = 0, name: str = "", select: list[str] | None = None
    ) -> None:
        self.fields.setdefault(
            field_id,
            {
                "fieldId": field_id,
                "fieldType": field_type,
                "displayName": name or f"Field {field_id}",
                "isRequired": False,
                "isActive": True,
                "sortOrder": len(self.fields),
                "selectValues": {v: v for v in select} if select else None,
                "fileTypes": None,
            },
        )

    def contacts(self) -> list[dict[str, Any]]:
        return [self._read(r) for r in self.records.values()]

    def insert(self, rec: dict[str, Any]) -> None:
        """Store ``rec`` (a record in the emulator's shape) as if made outside the API,
        e.g. a duplicate created in iVvy's UI; it is indexed like any other."""
        self.records[rec["id"]] = rec
        self._reindex(rec)

    def delete(self, contact_id: int) -> None:
        """Remove a contact as if deleted in iVvy's UI: its id then names no contact."""
        del self.records[contact_id]
        for key in self._keys.pop(contact_id, ()):
            self._index.get(key, set()).discard(contact_id)
        for members in self._members.values():
            members.discard(contact_id)

    def _reindex(self, rec: Mapping[str, Any]) -> None:
        contact_id = rec["id"]
        for key in self._keys.get(contact_id, ()):
            self._index.get(key, set()).discard(contact_id)
        keys = tuple((k, rec[k]) for k in _INDEXED if isinstance(rec.get(k), str))
        if isinstance(rec.get("email"), str):
            keys += (("email_ci", rec["email"].lower()),)
        for key in keys:
            self._index.setdefault(key, set()).add(contact_id)
        self._keys[contact_id] = keys
        for group_id, members in self._members.items():
            if group_id in rec["groups"]:
                members.add(contact_id)
            else:
                members.discard(contact_id)

    def _indexed(self, key: str, value: Any) -> list[dict[str, Any]]:
        """Stored contacts whose ``key`` is ``value``, in id order."""
        return [self.records[i] for i in sorted(self._index.get((key, value), ()))]

    def _read(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": rec["id"],
            **{
                k: rec.get(k)
                for k in (
                    "firstName",
                    "lastName",
                    "email",
                    "phone",
                    "status",
                    "smsStatus",
                    "externalId",
                    "companies",
                    "modifiedDate",
                )
            },
            "customFields": [
                {
                    "fieldId": k,
                    "displayName": self.fields.get(k, {}).get("displayName", ""),
                    "value": v,
                }
                for k, v in sorted(rec["customFields"].items())
            ],
            "groups": [
                {"contactId": rec["id"], "groupId": g, "joinDate": joined}
                for g, joined in sorted(rec["groups"].items())
            ],
        }

    # --- transport --------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        try:
            self._verify(request)
            if request.method != "POST":
                raise _Error(405, "Method Not Allowed")
            parts = request.url.path.strip("/").split("/")
            if len(parts) != 3 or parts[:2] != ["api", "1.0"]:
                raise _Error(404, "Not Found")
            try:
                params = json.loads(request.content) if request.content else {}
            except ValueError:
                raise _Error(400, "Bad Request") from None
            result = self._call(parts[2], request.url.params.get("action", ""), params)
        except _Error as error:
            return error.response()
        return json_response(200, result)

    def _verify(self, request: httpx.Request) -> None:
        scheme, _, credentials = request.headers.get("X-Api-Authorization", "").partition(" ")
        key, _, signed = credentials.partition(":")
        if scheme != "IWS" or key not in self.keys:
            raise _Error(401, "Unauthorized")
        md5 = request.headers.get("Content-MD5", "")
        if md5 != content_md5(request.content):
            raise _Error(401, "Unauthorized")
        ivvy_date = request.headers.get("IVVY-Date")
        date_header = "" if ivvy_date is not None else request.headers.get("Date", "")
        when_text = ivvy_date if ivvy_date is not None else date_header
        try:
            when = _parse_date(when_text, header=ivvy_date is None)
        except ValueError:
            raise _Error(401, "Unauthorized") from None
        if abs(self.clock() - when) > STALE_AFTER:
            raise _Error(401, "Request is stale", 23005)
        ivvy_headers = {k: v for k, v in request.headers.items() if k.lower().startswith("ivvy")}
        text = string_to_sign(
            request.method,
            md5,
            request.headers.get("Content-Type", ""),
            request.url.raw_path.decode("ascii"),
            {_canonical(k): v for k, v in ivvy_headers.items()},
            date=date_header,
        )
        if not hmac.compare_digest(signature(self.keys[key], text), signed):
            raise _Error(401, "Unauthorized")

    def _call(self, namespace: str, action: str, params: Any) -> Any:
        if not isinstance(params, Mapping):
            raise _Error(400, "Bad Request")
        if namespace == "test" and action == "ping":
            return {"ack": self.clock().strftime(_STAMP)}
        if namespace == "batch":
            return self._batch(action, params)
        if namespace != "contact":
            raise _Error(404, "Not Found")
        handlers: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "addOrUpdateContact": self._add_or_update,
            "getContact": self._get_contact,
            "getContactList": self._get_contact_list,
            "getSubscriptionGroupList": lambda p: [
                {
                    **g,
                    "memberCount": len(self._members.get(g["id"], ())),
                }
                for g in self.groups.values()
            ],
            "getCustomFieldDefinition": lambda p: list(self.fields.values()),
            "addContactsToSubscriptionGroup": lambda p: self._membership(p, add=True),
            "removeContactsFromSubscriptionGroup": lambda p: self._membership(p, add=False),
        }
        if action not in handlers:
            raise _Error(501, "Not Implemented")
        return handlers[action](params)

    # --- contacts ---------------------------------------------------------------------

    def _add_or_update(self, params: Mapping[str, Any]) -> dict[str, Any]:
        contact_id = params.get("id")
        if contact_id is not None:
            if (
                isinstance(contact_id, bool)
                or not isinstance(contact_id, int)
                or contact_id not in self.records
            ):
                raise _invalid("id")
            rec = self.records[contact_id]
        else:
            for name in ("firstName", "lastName", "email"):
                if not params.get(name):
                    raise _Error(400, f"'{name}' is required", 23017)
            rec = None
            if params.get("updateIfExists"):
                email = str(params["email"]).lower()
                rec = next(
                    (
                        r
                        for r in self._indexed("email_ci", email)
                        if (r["firstName"], r["lastName"])
                        == (params["firstName"], params["lastName"])
                    ),
                    None,
                )
        changes = self._validated(params)
        if rec is None:
            rec = {
                "id": next(self._ids),
                "customFields": {},
                "groups": {},
                "companies": [],
                "status": 1,
                "smsStatus": 1,
            }
            self.records[rec["id"]] = rec
        for key, value in changes.items():
            if key == "customFields":
                rec["customFields"].update(value)
            elif key == "groups":
                joined = self.clock().strftime(_STAMP)
                rec["groups"] = {g: rec["groups"].get(g, joined) for g in value}  # replaces all
            else:
                rec[key] = value
        rec["modifiedDate"] = self.clock().strftime(_STAMP)
        self._reindex(rec)
        return {"success": True, "id": rec["id"]}

    def _validated(self, params: Mapping[str, Any]) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        for key in ("firstName", "lastName", "phone", "externalId"):
            if key in params:
                if not isinstance(params[key], str):
                    raise _invalid(key)
                changes[key] = params[key]
        if "email" in params:
            if not isinstance(params["email"], str) or not _EMAIL.match(params["email"]):
                raise _invalid("email")
            changes["email"] = params["email"]
        for key, allowed in (("status", _EMAIL_STATUSES), ("smsStatus", _SMS_STATUSES)):
            if key in params:
                if params[key] not in allowed:
                    raise _invalid(key)
                changes[key] = params[key]
        if "groups" in params:
            groups = params["groups"]
            if not isinstance(groups, list) or any(
                not isinstance(g, Mapping) or g.get("groupId") not in self.groups for g in groups
            ):
                raise _invalid("groups")
            changes["groups"] = [g["groupId"] for g in groups]
        if "customFields" in params:
            changes["customFields"] = {
                f.get("fieldId"): self._field_value(f) for f in params["customFields"] or []
            }
        if "companies" in params:
            if not isinstance(params["companies"], list) or not all(
                isinstance(c, int) for c in params["companies"]
            ):
                raise _invalid("companies")
            changes["companies"] = params["companies"]
        return changes

    def _field_value(self, field: Any) -> Any:
        if not isinstance(field, Mapping) or field.get("fieldId") not in self.fields:
            raise _invalid("customFields")
        definition, value = self.fields[field["fieldId"]], field.get("value")
        kind = definition["fieldType"]
        if kind in (4, 6, 7):
            raise _invalid("customFields")
        if kind == 8 and not (isinstance(value, int) or str(value).lstrip("-").isdigit()):
            raise _invalid("customFields")
        if (
            kind == 2
            and definition["selectValues"]
            and str(value) not in definition["selectValues"]
        ):
            raise _invalid("customFields")
        return value

    def _get_contact(self, params: Mapping[str, Any]) -> dict[str, Any]:
        rec = self.records.get(params.get("id"))  # type: ignore[arg-type]
        if rec is None:
            raise _Error(400, "Contact not found", 24096)
        return self._read(rec)

    def _get_contact_list(self, params: Mapping[str, Any]) -> dict[str, Any]:
        filters = params.get("filter") or {}
        if not isinstance(filters, Mapping):
            raise _invalid("filter")
        for key in filters:
            if "__" in key:
                raise _Error(400, f"filter modifier in {key!r} is not emulated", 23016)
        # Filter the stored records first (from an index when a filter has one); only the
        # page is shaped for reading.
        indexed = next((k for k in filters if k in _INDEXED or k == "id"), None)
        candidates: Iterable[dict[str, Any]]
        if indexed == "id":
            found = self.records.get(filters["id"]) if isinstance(filters["id"], int) else None
            candidates = [] if found is None else [found]
        elif indexed is not None:
            candidates = self._indexed(indexed, filters[indexed])
        else:
            candidates = self.records.values()  # no indexed filter: a scan
        rows = [
            r for r in candidates
            if all(key in r and r[key] == wanted for key, wanted in filters.items())
        ]  # fmt: skip
        start = int(params.get("start") or 0)
        per_page = min(int(params.get("perPage") or 10), 100)
        page = [self._read(r) for r in rows[start : start + per_page]]
        return {
            "meta": {
                "totalResults": len(rows),
                "start": start,
                "perPage": per_page,
                "count": len(page),
            },
            "results": page,
        }

    def _membership(self, params: Mapping[str, Any], *, add: bool) -> list[dict[str, Any]]:
        group = params.get("group")
        if group not in self.groups:
            raise _invalid("group")
        out = []
        for contact_id in params.get("contacts") or []:
            rec = self.records.get(contact_id)
            if rec is not None:
                if add:
                    rec["groups"].setdefault(group, self.clock().strftime(_STAMP))
                    self._members[group].add(contact_id)
                else:
                    rec["groups"].pop(group, None)
                    self._members[group].discard(contact_id)
            out.append({"contactId": contact_id, "status": rec is not None})
        return out

    # --- batch ------------------------------------------------------------------------

    def _batch(self, action: str, params: Mapping[str, Any]) -> Any:
        if action == "run":
            jobs = params.get("jobs")
            if not isinstance(jobs, list) or not jobs:
                raise _Error(400, "Batch jobs are empty", 24093)
            if len(jobs) > MAX_JOBS:
                raise _Error(400, "More than 200 jobs", 24448)
            results = []
            for job in jobs:
                if not isinstance(job, Mapping) or not {"namespace", "action", "params"} <= set(
                    job
                ):
                    raise _Error(400, "Bad job format", 24092)
                try:
                    response = self._call(job["namespace"], job["action"], job["params"])
                except _Error as error:
                    response = json.loads(error.response().content)
                results.append(
                    {
                        "namespace": job["namespace"],
                        "action": job["action"],
                        "request": job["params"],
                        "response": response,
                    }
                )
            new_id = uuid.uuid4().hex
            self.batches[new_id] = results
            return {"asyncId": new_id}
        async_id = str(params.get("async"))
        if async_id not in self.batches:
            raise _Error(400, "Batch not found", 24105 if action == "progress" else 24115)
        if action == "progress":
            return {"progress": 100}
        if action == "results":
            return {"asyncId": async_id, "results": self.batches[async_id]}
        raise _Error(501, "Not Implemented")


def _canonical(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-")).replace("Ivvy", "IVVY")


def _parse_date(text: str, *, header: bool) -> dt.datetime:
    if header:
        parsed = dt.datetime.strptime(text.replace(" UTC", " GMT"), "%a, %d %b %Y %H:%M:%S GMT")
    else:
        parsed = dt.datetime.strptime(text.removesuffix(" UTC"), _STAMP)
    return parsed.replace(tzinfo=dt.UTC)
