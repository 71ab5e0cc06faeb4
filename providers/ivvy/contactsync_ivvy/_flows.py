"""Resolve the contact's iVvy id, write it, then change subscription groups."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any

from contactsync.provider import (
    Outcome,
    OutcomeError,
    Prepared,
    Request,
    RequestFailed,
    Response,
    Sleep,
    Status,
)

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


_RECONCILE_ROUNDS = 3


def _unknown(exc: RequestFailed, why: str) -> OutcomeError:
    return OutcomeError(
        "outcome_unknown",
        f"{exc}; whether iVvy created the contact is unknown ({why}); not sent again",
    )


def _find(
    external_id: str, contacts: tuple[int, ...]
) -> Generator[Request | Sleep, Response | None, tuple[int, int] | OutcomeError | None]:
    """The id of the (most recently modified) contact with ``external_id`` and how many
    there are; ``None`` when there is none."""
    found = yield Request(
        "POST",
        CONTACT + "getContactList",
        json={"filter": {"externalId": external_id}, "perPage": 10, "start": 0},
        contacts=contacts,
        plan_response=Response(200, _NOT_FOUND.encode()),
        read_only=True,
    )
    assert found is not None
    error = envelope(found)
    if error is not None:
        return describe(error, "looking the contact up by externalId")
    results = [r for r in (found.json() or {}).get("results") or [] if isinstance(r, Mapping)]
    if not results:
        return None
    return int(_latest(results)["id"]), len(results)


def upsert_one(item: Prepared[IvvyPayload], update_if_exists: bool) -> Steps:
    payload = item.payload
    contacts = (item.index,)
    contact_id = payload.remote_id
    warnings: list[str] = []
    if contact_id is None and payload.external_id is not None:
        # addOrUpdateContact creates whenever `id` is missing: find the id first.
        found = yield from _find(payload.external_id, contacts)
        if isinstance(found, OutcomeError):
            return _failed(item, found)
        if found is not None:
            contact_id, duplicates = found
            if duplicates > 1:
                warnings.append(
                    f"iVvy has {duplicates} contacts with externalId {payload.external_id!r}; "
                    f"updated the most recently modified (id {contact_id})"
                )
    creating = contact_id is None
    if creating and payload.missing_for_create:
        # No contact has the external id, and iVvy cannot create one without the name
        # and email triple: bad input, never sent a write (rejected, not failed).
        return Outcome(
            item.index,
            Status.REJECTED,
            error=OutcomeError(
                "invalid_contact",
                f"no iVvy contact has externalId {payload.external_id!r}, and iVvy needs "
                "first_name, last_name and email to create one; missing: "
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
    # A create without updateIfExists adds a contact each time it is applied: never
    # resent blindly. When its answer is lost, look the external id up instead.
    write = Request(
        "POST",
        CONTACT + "addOrUpdateContact",
        json=body,
        contacts=contacts,
        plan_response=Response(200, b'{"success": true, "id": 0}'),
        safe_to_resend=not creating or update_if_exists,
    )
    written: Response | None = None
    for _ in range(_RECONCILE_ROUNDS):
        try:
            written = yield write
            break
        except RequestFailed as exc:
            if not exc.maybe_applied:
                raise
            if payload.external_id is None:
                return _failed(item, _unknown(exc, "no externalId to look the contact up by"))
            found = yield from _find(payload.external_id, contacts)
            if isinstance(found, OutcomeError):
                return _failed(item, _unknown(exc, found.message))
            if found is not None:
                # The lost create was applied: the look-up shows the contact it made.
                written = Response(200, json.dumps({"success": True, "id": found[0]}).encode())
                break
            # Not applied: sending it again is safe.
    if written is None:
        return _failed(
            item,
            OutcomeError(
                "outcome_unknown",
                "creating the contact: answers lost on every attempt; not sent again",
            ),
        )
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
