"""Resolve the contact's iVvy id, write it, then change subscription groups."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from contactsync.provider import (
    ErrorCode,
    Outcome,
    OutcomeError,
    Prepared,
    Request,
    RequestFailed,
    Response,
    SkipReason,
    Status,
    Steps,
    SyncMode,
    failed,
    failed_outcome,
)

from ._envelope import INVALID_PARAMETER, describe, envelope
from ._mapping import IvvyPayload

CONTACT = "/api/1.0/contact?action="
_NOT_FOUND = json.dumps(
    {"meta": {"totalResults": 0, "start": 0, "perPage": 10, "count": 0}, "results": []}
)


def _latest(results: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    # iVvy timestamps ("YYYY-MM-DD HH:MM:SS") sort as text.
    return max(results, key=lambda r: (str(r.get("modifiedDate") or ""), int(r.get("id") or 0)))


_RECONCILE_ROUNDS = 3
_PAGE = 100
"""Contacts per page of a look-up that reads every match."""


def _unknown(exc: RequestFailed, why: str) -> OutcomeError:
    return OutcomeError(
        "outcome_unknown",
        f"{exc}; whether iVvy created the contact is unknown ({why}); not sent again",
    )


def _find(
    where: Mapping[str, Any], contacts: tuple[int, ...]
) -> Steps[tuple[int, int] | OutcomeError | None]:
    """The id of the (most recently modified) contact whose properties equal ``where``
    and how many there are; ``None`` when there is none."""
    found = yield Request(
        "POST",
        CONTACT + "getContactList",
        json={"filter": dict(where), "perPage": 10, "start": 0},
        contacts=contacts,
        plan_response=Response(200, _NOT_FOUND.encode()),
        read_only=True,
    )
    assert found is not None
    error = envelope(found)
    if error is not None:
        what = "looking the contact up by " + " and ".join(where)
        return describe(error, what)
    results = [r for r in (found.json() or {}).get("results") or [] if isinstance(r, Mapping)]
    if not results:
        return None
    return int(_latest(results)["id"]), len(results)


def _lookup_filter(
    payload: IvvyPayload, mode: SyncMode, in_doubt: bool = False
) -> Mapping[str, Any] | None:
    """What to look the contact up by when its id is not known: the external id, or,
    when the sync mode must know whether the contact exists, or an earlier run's
    create of it may have been applied (``in_doubt``: creating again without
    ``updateIfExists`` would make a second contact), the first name, last name and
    email that ``updateIfExists`` matches on."""
    if payload.external_id is not None:
        return {"externalId": payload.external_id}
    if (mode != "upsert" or in_doubt) and not payload.missing_for_create:
        return {k: payload.body[k] for k in ("firstName", "lastName", "email")}
    return None


def _map_id(item: Prepared[IvvyPayload]) -> int | None:
    """The contact id the state store's identity map holds, when it is an iVvy id."""
    known = item.known
    if known is None or known.remote_id is None or not known.remote_id.isdigit():
        return None
    return int(known.remote_id)


def _stale_id(response: Response) -> bool:
    """Whether iVvy refused the write because its ``id`` names no contact (23016
    "'id' does not validate"): a stored id of a contact deleted since."""
    error = envelope(response)
    return (
        error is not None
        and error.get("specificCode") == INVALID_PARAMETER
        and "'id'" in str(error.get("message") or "")
    )


def _skipped(item: Prepared[IvvyPayload], reason: SkipReason, contact_id: int | None) -> Outcome:
    return Outcome(
        item.index,
        Status.SKIPPED,
        remote_id=None if contact_id is None else str(contact_id),
        reason=reason,
    )


def upsert_one(
    item: Prepared[IvvyPayload], update_if_exists: bool, mode: SyncMode = "upsert"
) -> Steps[Outcome]:
    payload = item.payload
    contacts = (item.index,)
    contact_id = payload.remote_id
    warnings: list[str] = []
    from_map = False
    if contact_id is None:
        # The identity map: write by the id iVvy gave last time, without a look-up.
        contact_id = _map_id(item)
        from_map = contact_id is not None
    if contact_id is not None and mode == "create_only":
        return _skipped(item, SkipReason.EXISTS, contact_id)
    if contact_id is not None:
        outcome = yield from _write(item, update_if_exists, contact_id, warnings)
        if not (from_map and isinstance(outcome, Response)):
            return outcome if isinstance(outcome, Outcome) else _refusal(item, outcome)
        # The stored id names no contact any more (deleted on iVvy): never trusted
        # again, the contact is looked up as if the map held nothing.
        contact_id = None
    where = _lookup_filter(payload, mode, item.in_doubt and not update_if_exists)
    if where is not None:
        # addOrUpdateContact creates whenever `id` is missing: find the id first.
        if "externalId" in where:
            found = yield from _find(where, contacts)
        else:
            found = yield from _find_by_name_and_email(payload, contacts)
        if isinstance(found, OutcomeError):
            return failed(item, found)
        if found is not None:
            contact_id, duplicates = found
            if duplicates > 1:
                described = ", ".join(f"{k} {v!r}" for k, v in where.items())
                warnings.append(
                    f"iVvy has {duplicates} contacts with {described}; "
                    f"updated the most recently modified (id {contact_id})"
                )
    if contact_id is not None and mode == "create_only":
        return _skipped(item, SkipReason.EXISTS, contact_id)
    if contact_id is None and mode == "update_only":
        return _skipped(item, SkipReason.NOT_FOUND, None)
    if contact_id is None and update_if_exists and not payload.missing_for_create:
        # A create with updateIfExists lands on any contact with the same first name,
        # last name and email: another person's record when that contact holds
        # another external id, or an email differing but for letter case (rule 7).
        resolved = yield from _resolve_namesake(item, contacts, warnings)
        if isinstance(resolved, Outcome):
            return resolved
        contact_id = resolved
    try:
        outcome = yield from _write(item, update_if_exists, contact_id, warnings)
    except RequestFailed as exc:
        if not warnings:
            raise
        outcome = failed_outcome(item, exc)
    # A failed write (or group change after it) may still have reached the contact
    # chosen above: the outcome names an adoption whatever the write's fate, so no
    # contact changes that no outcome accounts for (rule 7).
    return _warned(outcome if isinstance(outcome, Outcome) else _refusal(item, outcome), warnings)


def _warned(outcome: Outcome, warnings: list[str]) -> Outcome:
    """``outcome`` carrying ``warnings`` (a successful one already does)."""
    if not warnings or outcome.warnings:
        return outcome
    return attrs.evolve(outcome, warnings=tuple(warnings))


def _same_address(a: object, b: object) -> bool:
    """Two addresses as one person: the part before ``@`` exact, the domain in any
    letter case (a finer rule than iVvy's own, which is undocumented)."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    local_a, _, domain_a = a.rpartition("@")
    local_b, _, domain_b = b.rpartition("@")
    return local_a == local_b and domain_a.lower() == domain_b.lower()


def _namesakes(
    payload: IvvyPayload, contacts: tuple[int, ...]
) -> Steps[list[Mapping[str, Any]] | OutcomeError]:
    """Every contact ``updateIfExists`` could match: the same first and last name, and
    an email equal but for letter case (whether iVvy's match ignores case is not
    documented; the coarser reading finds every contact it could land on). Looked up
    by the names, the emails compared here, every page read."""
    names = {k: payload.body[k] for k in ("firstName", "lastName")}
    email = str(payload.body["email"]).lower()
    found: list[Mapping[str, Any]] = []
    start = 0
    while True:
        response = yield Request(
            "POST",
            CONTACT + "getContactList",
            json={"filter": names, "perPage": _PAGE, "start": start},
            contacts=contacts,
            plan_response=Response(200, _NOT_FOUND.encode()),
            read_only=True,
        )
        assert response is not None
        error = envelope(response)
        if error is not None:
            return describe(error, "looking up contacts with the same first and last name")
        answer = response.json() or {}
        page = [r for r in answer.get("results") or [] if isinstance(r, Mapping)]
        found += [r for r in page if str(r.get("email") or "").lower() == email]
        start += len(page)
        total = (answer.get("meta") or {}).get("totalResults")
        if not page or not isinstance(total, int) or start >= total:
            return found


def _find_by_name_and_email(
    payload: IvvyPayload, contacts: tuple[int, ...]
) -> Steps[tuple[int, int] | OutcomeError | None]:
    """Like :func:`_find`, for a contact without external id: the contacts with its
    first and last name and its address (the domain in any letter case, as iVvy's own
    match on first name, last name and email finds them: a contact made in iVvy's UI,
    or one a create with ``updateIfExists`` landed on, may hold ``ann@EXAMPLE.COM``
    where the contact is ``ann@example.com``, and an exact ``email`` filter would miss
    it). Never one whose part before the ``@`` differs: that is another person."""
    found = yield from _namesakes(payload, contacts)
    if isinstance(found, OutcomeError):
        return found
    own = [r for r in found if _same_address(r.get("email"), payload.body["email"])]
    if not own:
        return None
    return int(_latest(own)["id"]), len(own)


def _resolve_namesake(
    item: Prepared[IvvyPayload], contacts: tuple[int, ...], warnings: list[str]
) -> Steps[int | Outcome | None]:
    """Before a create with ``updateIfExists``. For a contact without external id:
    ``None`` when every contact it could match has its very email (create as
    planned), else the id of the latest of those, or ``rejected``
    (``identity_conflict``) with none. For a contact with an external id that no
    contact holds: ``None`` when no contact could be matched (create as planned);
    the id of the one contact without an external id whose name and email are this
    contact's (the most recently modified: adopted, written by its id, with the
    warning ``adopted_by_email``);
    else ``rejected`` (``identity_conflict``), nothing sent: the create could land on
    a contact that holds another external id (another person), or on one whose
    email differs but for letter case."""
    payload = item.payload
    found = yield from _namesakes(payload, contacts)
    if isinstance(found, OutcomeError):
        return failed(item, found)
    if not found:
        return None
    email = payload.body["email"]
    if payload.external_id is None:
        # Without an external id the person is the name and email (iVvy's identity):
        # a contact with this very email is theirs, whatever external id it holds.
        same = [r for r in found if _same_address(r.get("email"), email)]
        if len(same) == len(found):
            return None  # updateIfExists can only land on this person's own
        if same:
            return int(_latest(same)["id"])  # written by its id: no other is touched
        others = ", ".join(f"{r.get('id')} (email {r.get('email')!r})" for r in found)
        return Outcome(
            item.index,
            Status.REJECTED,
            error=OutcomeError(
                ErrorCode.IDENTITY_CONFLICT,
                "creating this contact with updateIfExists could land on another "
                "person's contact with the same first name and last name and an email "
                f"differing but for letter case: {others}; nothing was sent",
            ),
        )
    own = [r for r in found if not r.get("externalId") and _same_address(r.get("email"), email)]
    if own:
        # A contact made outside the library (iVvy's UI, an import) under this
        # person's own name and email: theirs. Written by its id, so no other contact
        # that updateIfExists could match is touched.
        contact_id = int(_latest(own)["id"])
        warnings.append(
            f"adopted_by_email: iVvy contact {contact_id} has this first name, last name "
            "and email and no external id; written by its id, so that once the write "
            "is applied it holds this contact's external id"
        )
        return contact_id
    others = ", ".join(
        f"{r.get('id')} (external id {r.get('externalId')!r}, email {r.get('email')!r})"
        if r.get("externalId")
        else f"{r.get('id')} (no external id, email {r.get('email')!r})"
        for r in found
    )
    return Outcome(
        item.index,
        Status.REJECTED,
        error=OutcomeError(
            ErrorCode.IDENTITY_CONFLICT,
            f"no iVvy contact has externalId {payload.external_id!r}, and creating it "
            "with updateIfExists could land on another person's contact with the same "
            f"first name, last name and email: {others}; nothing was sent",
        ),
    )


def _refusal(item: Prepared[IvvyPayload], response: Response) -> Outcome:
    error = envelope(response)
    assert error is not None
    return failed(item, describe(error, "iVvy refused the contact"))


def _write_status(creating: bool, update_if_exists: bool) -> Status:
    """What a successful addOrUpdateContact proves: its answer is only the id.

    With an ``id`` it updates that contact (an unknown id is refused). Without one and
    without ``updateIfExists`` it creates. With ``updateIfExists`` it may have matched a
    contact on first name, last name and email (one this run's look-up by external id
    could not find: it holds no external id, or another) and updated it, or created one:
    nothing in the answer says which."""
    if not creating:
        return Status.UPDATED
    return Status.WRITTEN if update_if_exists else Status.CREATED


def _write(
    item: Prepared[IvvyPayload],
    update_if_exists: bool,
    contact_id: int | None,
    warnings: list[str],
) -> Steps[Outcome | Response]:
    """Write the contact (by ``contact_id`` when known, else create it) and change its
    groups. Returns its outcome, or the refusal itself when iVvy said the ``id`` names
    no contact (the caller decides whether that id may be repaired)."""
    payload = item.payload
    contacts = (item.index,)
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
            if not creating:
                # A write by id whose answer was lost: the contact exists either way,
                # so a look-up cannot tell whether this data reached it.
                return failed(
                    item,
                    OutcomeError(
                        "outcome_unknown",
                        f"{exc}; whether iVvy updated contact {contact_id} is unknown",
                        retryable=exc.retryable,  # a write by id is safe to send again
                    ),
                    contact_id,
                )
            if payload.external_id is None:
                return failed(item, _unknown(exc, "no externalId to look the contact up by"))
            try:
                found = yield from _find({"externalId": payload.external_id}, contacts)
            except RequestFailed as lookup:
                # The create may still have been applied: unknown, not "not applied".
                return failed(item, _unknown(exc, str(lookup)))
            if isinstance(found, OutcomeError):
                return failed(item, _unknown(exc, found.message))
            if found is not None:
                # The lost create was applied: the look-up shows the contact it made.
                written = Response(200, json.dumps({"success": True, "id": found[0]}).encode())
                break
            # Not applied: sending it again is safe.
    if written is None:
        return failed(
            item,
            OutcomeError(
                "outcome_unknown",
                "creating the contact: answers lost on every attempt; not sent again",
            ),
        )
    if contact_id is not None and _stale_id(written):
        return written
    error = envelope(written)
    if error is not None:
        return failed(item, describe(error, "iVvy refused the contact"), contact_id)
    answer = written.json() or {}
    if answer.get("success") is False or answer.get("id") is None:
        message = str(answer.get("message") or "iVvy reported no success")
        return failed(item, OutcomeError("platform_error", message), contact_id)
    contact_id = int(answer["id"])
    status = _write_status(creating, update_if_exists)
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
                return failed(item, describe(error, f"{action} (group {group})"), contact_id)
            statuses = [r for r in changed.json() or [] if isinstance(r, Mapping)]
            if any(r.get("status") is False for r in statuses):
                return failed(
                    item,
                    OutcomeError("platform_error", f"{action} (group {group}) reported failure"),
                    contact_id,
                )
    return Outcome(item.index, status, remote_id=str(contact_id), warnings=tuple(warnings))
