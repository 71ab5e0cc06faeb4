"""One contact's requests: an optional look-up, the write, tags to remove, SMS opt-in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from contactsync.provider import (
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
    platform_error,
)

from ._mapping import GleantapPayload

API = "/v2/ExternalApi/"
_SAVED = json.dumps({"status": "success", "_id": "planned"}).encode()


def written(response: Response) -> str | None:
    """The contact id when the write succeeded: 2xx, status "success" and an ``_id``."""
    body = response.json()
    if not response.is_success or not isinstance(body, Mapping):
        return None
    contact_id = body.get("_id")
    if body.get("status") != "success" or not contact_id:
        return None
    return str(contact_id)


def _refused(item: Prepared[GleantapPayload], response: Response, what: str) -> Outcome:
    return failed(item, platform_error(response, what, detail=True))


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


def _carries(member: Mapping[str, Any], key: str, value: str) -> bool:
    """Whether a ``getCustomers`` member holds the email (any case) or phone (its digits)
    it was asked for: an answer is never trusted for a contact it does not describe."""
    held = member.get(key)
    if not isinstance(held, str) or not held:
        return False
    if key == "email":
        return held.strip().lower() == value.strip().lower()
    return bool(_digits(held)) and _digits(held) == _digits(value)


def _lookup_warnings(
    members: list[Mapping[str, Any]], key: str, value: str, first_name: str
) -> list[str]:
    """Warnings from the look-up. Nothing in the write changes: Gleantap's own rule
    (email or phone *and* first name) decides which contact it lands on, and a first
    name the caller did not give is never sent."""
    warnings = []
    ours = [m for m in members if _carries(m, key, value)]
    if len(ours) < len(members):
        warnings.append(
            f"getCustomers answered {len(members) - len(ours)} member(s) without the {key} "
            "asked for; ignored"
        )
    names = sorted({str(m["firstname"]) for m in ours if m.get("firstname")})
    if names and first_name not in names:
        warnings.append(
            f"Gleantap holds this {key} under another first name ({', '.join(map(repr, names))}),"
            f" not {first_name!r}: written as a separate contact (Gleantap matches {key} plus "
            "first name). Without external_id a first-name change cannot be told apart from "
            "a different person sharing the address, so no contact is renamed or merged"
        )
    return warnings


def _get_customers(
    item: Prepared[GleantapPayload], key: str, value: Any
) -> Steps[list[Mapping[str, Any]] | Outcome]:
    """``getCustomers`` filtered on one key: its members, or the failed outcome."""
    found = yield Request(
        "POST",
        API + "getCustomers",
        json={"app_id": item.payload.body["app_id"], key: value, "limit": 10, "offset": 0},
        contacts=(item.index,),
        plan_response=Response(200, b'{"members": []}'),
        read_only=True,
    )
    assert found is not None
    if not found.is_success:
        return _refused(item, found, f"looking the contact up by {key}")
    return [m for m in (found.json() or {}).get("members") or [] if isinstance(m, Mapping)]


def _existing(
    item: Prepared[GleantapPayload],
) -> Steps[str | Outcome | None]:
    """The id of the contact ``newContact`` would update, by Gleantap's rules in their
    order (same ``user_id``; else same email and first name; else same phone and first
    name), ``""`` when the matching member shows none, or ``None`` when it would create
    one. Up to three look-ups."""
    body = item.payload.body
    first_name = str(body["first_name"])
    for key in ("user_id", "email", "phone"):
        if not body.get(key):
            continue
        members = yield from _get_customers(item, key, body[key])
        if isinstance(members, Outcome):
            return members
        for member in members:
            if key == "user_id":
                # Members do not carry user_id (the spec's member has none): the
                # filter is trusted, unless a member names another one.
                if member.get("user_id") not in (None, str(body[key])):
                    continue
            elif not _carries(member, key, str(body[key])) or (
                str(member.get("firstname") or "") != first_name
            ):
                continue
            return str(member.get("id") or "")  # "" when the member shows no id
    return None


def upsert_one(
    item: Prepared[GleantapPayload], lookup: bool, mode: SyncMode = "upsert"
) -> Steps[Outcome]:
    payload = item.payload
    contacts = (item.index,)
    body = dict(payload.body)
    warnings: list[str] = []
    if mode != "upsert":
        # Whether the write would land on an existing contact decides: Gleantap's
        # answer to newContact does not say whether it created one.
        existing = yield from _existing(item)
        if isinstance(existing, Outcome):
            return existing
        if existing is not None and mode == "create_only":
            return Outcome(
                item.index, Status.SKIPPED, remote_id=existing or None, reason=SkipReason.EXISTS
            )
        if existing is None and mode == "update_only":
            return Outcome(item.index, Status.SKIPPED, reason=SkipReason.NOT_FOUND)
    elif lookup and "user_id" not in body and item.known is None:
        # Without user_id Gleantap matches on email + first name (or phone + first
        # name): find out whether the address is held under another first name, and say
        # so. Not needed when the identity map knows this contact: its state key is the
        # email (or phone) *and* first name, so the record this write lands on is the
        # one written last time.
        key = "email" if "email" in body else "phone"
        members = yield from _get_customers(item, key, body[key])
        if isinstance(members, Outcome):
            return members
        warnings += _lookup_warnings(members, key, str(body[key]), str(body["first_name"]))
    if payload.tags_add:
        body.update(tags=",".join(payload.tags_add), tag_action="add")
    response = yield Request(
        "POST",
        API + "newContact",
        json=body,
        contacts=contacts,
        plan_response=Response(200, _SAVED),
    )
    assert response is not None
    contact_id = written(response)
    if contact_id is None:
        return _refused(item, response, "Gleantap did not save the contact")
    # Tags to remove go second: if this request fails, the contact has a tag too many,
    # never one too few.
    if payload.tags_remove:
        removal = {
            **payload.identity,
            "tags": ",".join(payload.tags_remove),
            "tag_action": "remove",
        }
        response = yield Request(
            "POST",
            API + "newContact",
            json=removal,
            contacts=contacts,
            plan_response=Response(200, _SAVED),
        )
        assert response is not None
        if written(response) is None:
            outcome = _refused(item, response, "removing tags")
            return Outcome(item.index, Status.FAILED, remote_id=contact_id, error=outcome.error)
    if payload.sms_double_opt_in:
        opt_in = {k: body[k] for k in ("app_id", "phone", "email", "user_id")}
        if "dob" in body:
            opt_in["dob"] = body["dob"]
        try:
            response = yield Request(
                "POST",
                API + "optin",
                json=opt_in,
                contacts=contacts,
                plan_response=Response(200, b'{"status": "success"}'),
                # It texts the person: sent at most once, whatever happens to the answer.
                safe_to_resend=False,
            )
        except RequestFailed as exc:
            if not exc.maybe_applied:
                raise
            error = OutcomeError(
                "outcome_unknown",
                f"{exc}: the contact was saved, but whether the SMS opt-in message went out "
                "is unknown; not sent again (sending it again may text the person twice)",
            )
            return Outcome(item.index, Status.FAILED, remote_id=contact_id, error=error)
        assert response is not None
        answer = response.json()
        if (
            not response.is_success
            or not isinstance(answer, Mapping)
            or answer.get("status") != "success"
        ):
            outcome = _refused(item, response, "starting the SMS double opt-in")
            return Outcome(item.index, Status.FAILED, remote_id=contact_id, error=outcome.error)
    return Outcome(item.index, Status.UPDATED, remote_id=contact_id, warnings=tuple(warnings))
