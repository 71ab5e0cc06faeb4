"""One contact's requests: an optional look-up, the write, tags to remove, SMS opt-in."""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any

from contactsync import (
    Outcome,
    OutcomeError,
    Prepared,
    Request,
    RequestFailed,
    Response,
    Sleep,
    Status,
)

from ._mapping import GleantapPayload

Steps = Generator[Request | Sleep, Response | None, Outcome]
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
    error = OutcomeError(
        "platform_error",
        f"{what}: HTTP {response.status_code} {response.text[:500]}".rstrip(),
        status_code=response.status_code,
        detail={"body": response.text[:2000]},
    )
    return Outcome(item.index, Status.FAILED, error=error)


def _stored_first_name(members: list[Mapping[str, Any]], payload: GleantapPayload) -> str | None:
    """The first name Gleantap holds for this email/phone, when it differs from ours."""
    ours = payload.body["first_name"]
    names = [str(m.get("firstname")) for m in members if m.get("firstname")]
    if not names or ours in names:
        return None
    return names[0]


def upsert_one(item: Prepared[GleantapPayload], lookup: bool) -> Steps:
    payload = item.payload
    contacts = (item.index,)
    body = dict(payload.body)
    identity = dict(payload.identity)
    warnings: list[str] = []
    if lookup and "user_id" not in body:
        # Without user_id Gleantap matches on email + first name (or phone + first
        # name): a changed first name would create a second contact. Find the stored one.
        key = "email" if "email" in body else "phone"
        found = yield Request(
            "POST",
            API + "getCustomers",
            json={"app_id": body["app_id"], key: body[key], "limit": 10, "offset": 0},
            contacts=contacts,
            plan_response=Response(200, b'{"members": []}'),
            read_only=True,
        )
        assert found is not None
        if not found.is_success:
            return _refused(item, found, f"looking the contact up by {key}")
        members = [m for m in (found.json() or {}).get("members") or [] if isinstance(m, Mapping)]
        stored = _stored_first_name(members, payload)
        if stored is not None:
            warnings.append(
                f"first name not changed ({stored!r} kept, {body['first_name']!r} sent): without "
                "external_id Gleantap finds contacts by email or phone plus first name"
            )
            body["first_name"] = identity["first_name"] = stored
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
        removal = {**identity, "tags": ",".join(payload.tags_remove), "tag_action": "remove"}
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
