"""Resolve the contact's iVvy id, write it, then change subscription groups."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any

from contactsync import Outcome, OutcomeError, Prepared, Request, Response, Sleep, Status

from ._envelope import describe, envelope
from ._mapping import IvvyPayload

Steps = Generator[Request | Sleep, Response | None, Outcome]

CONTACT = "/api/1.0/contact?action="
_NOT_FOUND = json.dumps(
    {"meta": {"totalResults": 0, "start": 0, "perPage": 10, "count": 0}, "results": []}
)


def _failed(
    item: Prepared[IvvyPayload], error: OutcomeError, remote_id: int | None = None
) -> Outcome:
    return Outcome(
        item.index,
        Status.FAILED,
        remote_id=None if remote_id is None else str(remote_id),
        error=error,
    )


def _latest(results: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    # iVvy timestamps ("YYYY-MM-DD HH:MM:SS") sort as text.
    return max(results, key=lambda r: (str(r.get("modifiedDate") or ""), int(r.get("id") or 0)))


def upsert_one(item: Prepared[IvvyPayload], update_if_exists: bool) -> Steps:
    payload = item.payload
    contacts = (item.index,)
    contact_id = payload.remote_id
    warnings: list[str] = []
    if contact_id is None and payload.external_id is not None:
        # addOrUpdateContact creates whenever `id` is missing: find the id first.
        found = yield Request(
            "POST",
            CONTACT + "getContactList",
            json={"filter": {"externalId": payload.external_id}, "perPage": 10, "start": 0},
            contacts=contacts,
            plan_response=Response(200, _NOT_FOUND.encode()),
        )
        assert found is not None
        error = envelope(found)
        if error is not None:
            return _failed(item, describe(error, "looking the contact up by externalId"))
        results = [r for r in (found.json() or {}).get("results") or [] if isinstance(r, Mapping)]
        if results:
            chosen = _latest(results)
            contact_id = int(chosen["id"])
            if len(results) > 1:
                warnings.append(
                    f"iVvy has {len(results)} contacts with externalId {payload.external_id!r}; "
                    f"updated the most recently modified (id {contact_id})"
                )
    creating = contact_id is None
    if creating and payload.missing_for_create:
        return _failed(
            item,
            OutcomeError(
                "invalid_contact",
                "iVvy needs first_name, last_name and email to create a contact; missing: "
                + ", ".join(payload.missing_for_create),
                field=payload.missing_for_create[0],
            ),
        )
    body: dict[str, Any] = dict(payload.body)
    if creating:
        # Matching on first name + last name + email makes a resent create (after a
        # lost response) update the contact it created instead of adding another.
        if update_if_exists:
            body["updateIfExists"] = True
    else:
        body = {"id": contact_id, **body}
    written = yield Request(
        "POST",
        CONTACT + "addOrUpdateContact",
        json=body,
        contacts=contacts,
        plan_response=Response(200, b'{"success": true, "id": 0}'),
    )
    assert written is not None
    error = envelope(written)
    if error is not None:
        return _failed(item, describe(error, "iVvy refused the contact"), contact_id)
    answer = written.json() or {}
    if answer.get("success") is False or answer.get("id") is None:
        message = str(answer.get("message") or "iVvy reported no success")
        return _failed(item, OutcomeError("platform_error", message), contact_id)
    contact_id = int(answer["id"])
    for action, groups in (
        ("addContactsToSubscriptionGroup", payload.groups_add),
        ("removeContactsFromSubscriptionGroup", payload.groups_remove),
    ):
        for group in groups:
            changed = yield Request(
                "POST",
                CONTACT + action,
                json={"contacts": [contact_id], "group": group},
                contacts=contacts,
                plan_response=Response(
                    200, json.dumps([{"contactId": 0, "status": True}]).encode()
                ),
            )
            assert changed is not None
            error = envelope(changed)
            if error is not None:
                return _failed(item, describe(error, f"{action} (group {group})"), contact_id)
            statuses = [r for r in changed.json() or [] if isinstance(r, Mapping)]
            if any(r.get("status") is False for r in statuses):
                return _failed(
                    item,
                    OutcomeError("platform_error", f"{action} (group {group}) reported failure"),
                    contact_id,
                )
    status = Status.CREATED if creating else Status.UPDATED
    return Outcome(item.index, status, remote_id=str(contact_id), warnings=tuple(warnings))
