"""One contact's requests: an optional look-up, the write, tags to remove, SMS opt-in."""

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
    Recall,
    Request,
    RequestFailed,
    Response,
    SkipReason,
    Status,
    Steps,
    SyncMode,
    failed,
    platform_error,
    recalled,
    record_keys,
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


@attrs.frozen
class _Match:
    """A contact ``newContact`` would update, as a look-up found it."""

    via: str
    """The rule that matched: ``user_id``, ``email`` or ``phone`` (the last two with the
    same first name)."""
    id: str
    """Its Gleantap id (``""`` when the member shows none)."""


def _first_match(
    members: list[Mapping[str, Any]], key: str, value: str, first_name: str
) -> _Match | None:
    for member in members:
        if key == "user_id":
            # Members do not carry user_id (the spec's member has none): the filter
            # is trusted, unless a member names another one.
            if member.get("user_id") not in (None, value):
                continue
        elif not _carries(member, key, value) or str(member.get("firstname") or "") != first_name:
            continue
        return _Match(key, str(member.get("id") or ""))
    return None


def _resolve(item: Prepared[GleantapPayload]) -> Steps[_Match | Outcome | None]:
    """The contact ``newContact`` would update, by Gleantap's rules in their order (same
    ``user_id``; else same email and first name; else same phone and first name), or
    ``None`` when no rule matches. Up to three look-ups."""
    body = item.payload.body
    first_name = str(body["first_name"])
    for key in ("user_id", "email", "phone"):
        if not body.get(key):
            continue
        members = yield from _get_customers(item, key, body[key])
        if isinstance(members, Outcome):
            return members
        match = _first_match(members, key, str(body[key]), first_name)
        if match is not None:
            return match
    return None


def _conflict(item: Prepared[GleantapPayload], message: str) -> Outcome:
    return Outcome(
        item.index,
        Status.REJECTED,
        error=OutcomeError(ErrorCode.IDENTITY_CONFLICT, message, field="external_id"),
    )


def _tied_external_ids(item: Prepared[GleantapPayload], match: _Match) -> Steps[list[str]]:
    """The external ids (other than this contact's own) the run and the state store tie
    ``match``'s Gleantap id to."""
    if not match.id:
        return []
    answer = yield Recall(match.id, contacts=(item.index,))
    own = record_keys(item.contact, ("external_id",))
    prefix = "external_id="
    return sorted(
        key.removeprefix(prefix)
        for key in recalled(answer)
        if key.startswith(prefix) and key not in own
    )


def _adopt(item: Prepared[GleantapPayload], match: _Match, adopt: str) -> Steps[Outcome | None]:
    """A ``user_id`` Gleantap does not hold, whose email (or phone) and first name match
    ``match``: Gleantap may write it there (its rules are alternatives; whether an unknown
    ``user_id`` falls back to them is not documented). ``None`` when that may happen,
    else the rejection."""
    user_id = str(item.payload.body["user_id"])
    tied = yield from _tied_external_ids(item, match)
    where = (
        f"Gleantap holds no contact with user_id {user_id!r}, and its {match.via} and first "
        f"name match contact {match.id or '(no id shown)'}"
    )
    if tied:
        return _conflict(
            item,
            f"{where}, which belongs to external id {tied[0]!r}: not sent (Gleantap could "
            "write this person over that one)",
        )
    if adopt == "never":
        return _conflict(
            item,
            f'{where}; options.adopt is "never": not sent (Gleantap could write this '
            "person over that contact)",
        )
    return None


@attrs.define
class _Judged:
    """What the look-ups before the write showed."""

    warnings: list[str] = attrs.field(factory=list)
    expected: str | None = None
    """The id a look-up of this run showed the write lands on (proves ``updated``)."""
    proved_new: bool = False
    """Look-ups of this run showed that no rule of Gleantap's matches (``created``)."""
    adopted: _Match | None = None


def _judge(
    item: Prepared[GleantapPayload], lookup: bool, mode: SyncMode, adopt: str
) -> Steps[_Judged | Outcome]:
    """The look-ups before the write: an outcome when the contact is not to be
    written (skipped by the sync mode, rejected as someone else's), else what they
    showed."""
    body = item.payload.body
    judged = _Judged()
    if mode != "upsert" or ("user_id" in body and item.known is None):
        # Whether the write would land on an existing contact decides the sync mode
        # (Gleantap's answer does not say whether it created one); and a user_id
        # Gleantap does not hold may land on a contact that is someone else's.
        match = yield from _resolve(item)
        if isinstance(match, Outcome):
            return match
        if match is not None and mode == "create_only":
            return Outcome(
                item.index, Status.SKIPPED, remote_id=match.id or None, reason=SkipReason.EXISTS
            )
        if match is None and mode == "update_only":
            return Outcome(item.index, Status.SKIPPED, reason=SkipReason.NOT_FOUND)
        if match is not None and match.via != "user_id" and "user_id" in body:
            if item.in_doubt:
                # A row of this run sharing this email or phone made a contact whose
                # answer was lost: the match may be that person's, not a stranger's.
                return _conflict(
                    item,
                    f"Gleantap holds no contact with user_id {body['user_id']!r}, and its "
                    f"{match.via} and first name match contact {match.id or '(no id shown)'}, "
                    "which a write of this run for another person may have made (its "
                    "answer was lost): not sent",
                )
            refusal = yield from _adopt(item, match, adopt)
            if refusal is not None:
                return refusal
            judged.adopted = match
        judged.proved_new = match is None
        judged.expected = None if match is None else match.id or None
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
        first_name = str(body["first_name"])
        judged.warnings += _lookup_warnings(members, key, str(body[key]), first_name)
        match = _first_match(members, key, str(body[key]), first_name)
        if match is not None:
            tied = yield from _tied_external_ids(item, match)
            if tied:
                return _conflict(
                    item,
                    f"no external_id, and Gleantap would write it onto contact {match.id} "
                    f"(same {key} and first name), which belongs to external id "
                    f"{tied[0]!r}: not sent",
                )
            judged.expected = match.id or None
        # With an email that matches no one, Gleantap's phone rule may still match.
        judged.proved_new = match is None and (key == "phone" or "phone" not in body)
    return judged


def upsert_one(
    item: Prepared[GleantapPayload],
    lookup: bool,
    mode: SyncMode = "upsert",
    adopt: str = "warn",
) -> Steps[Outcome]:
    payload = item.payload
    contacts = (item.index,)
    body = dict(payload.body)
    judged = yield from _judge(item, lookup, mode, adopt)
    if isinstance(judged, Outcome):
        return judged
    warnings = judged.warnings
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
    adopted = judged.adopted
    if adopted is not None and contact_id == adopted.id:
        warnings.append(
            f"adopted_by_{adopted.via}: Gleantap holds no contact with user_id "
            f"{body['user_id']!r}; written to contact {contact_id}, whose {adopted.via} and "
            "first name match (Gleantap's answer does not say whether that contact has "
            'another user_id; options.adopt = "never" rejects such a contact instead)'
        )
    return Outcome(
        item.index,
        _status(contact_id, judged, None if item.known is None else item.known.remote_id),
        remote_id=contact_id,
        warnings=tuple(warnings),
    )


def _status(contact_id: str, judged: _Judged, known: str | None) -> Status:
    """What the write did, as far as this run can prove it: Gleantap's answer is the
    same whether it created or updated."""
    if judged.proved_new:
        return Status.CREATED  # no rule of Gleantap's matched a moment ago
    if contact_id in (judged.expected, known):
        return Status.UPDATED  # the very contact a look-up or the identity map names
    return Status.WRITTEN
