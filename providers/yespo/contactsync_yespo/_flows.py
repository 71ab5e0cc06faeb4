"""The request sequences: real-time upsert, bulk upsert with its import session,
and the follow-ups (segments, unsubscribed list) both may need."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from attrs import evolve

from contactsync.provider import (
    BatchRefused,
    ErrorCode,
    Outcome,
    OutcomeError,
    Prepared,
    Request,
    RequestFailed,
    Response,
    Sleep,
    Status,
    Steps,
    failed,
    failed_outcome,
    platform_error,
)

from ._lenient import as_int, one_or_many
from ._mapping import YespoPayload
from ._options import YespoOptions

Item = Prepared[YespoPayload]

MAX_POLL_WAIT = 30.0
# The documented statuses of an import still running (FINISHED and ERROR are final).
_IN_PROGRESS = frozenset({"STARTED", "IMPORTING"})
MAX_SEGMENT_IDS = 500
GROUP_PAGE = 500  # maxrows of GET /api/v1/groups is at most 500


# --- segments -------------------------------------------------------------------------


class SegmentIds:
    """Segment name → id, looked up once per name (attach/detach take ids)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def resolve(self, name: str, contacts: tuple[int, ...]) -> Steps[Any]:
        if name in self._ids:
            return self._ids[name]
        start = 1
        while True:
            # ``name`` filters by substring: the exact name may be on any page.
            response = yield Request(
                "GET",
                f"/api/v1/groups?name={quote(name)}&startindex={start}&maxrows={GROUP_PAGE}",
                contacts=contacts,
                plan_response=Response(200, json.dumps([{"id": 0, "name": name}]).encode()),
            )
            assert response is not None
            if not response.is_success:
                raise RequestFailed(f"looking up segment {name!r}: HTTP {response.status_code}")
            page = one_or_many(response.json())
            for group in page:
                if isinstance(group, Mapping) and group.get("name") == name:
                    segment_id = as_int(group.get("id"))
                    if segment_id is not None:
                        self._ids[name] = segment_id
                        return segment_id
            if len(page) < GROUP_PAGE:
                break
            start += GROUP_PAGE
        raise RequestFailed(f"Yespo has no segment named {name!r}", retryable=False)


def _post_required(
    path: str, body: dict[str, Any], contacts: tuple[int, ...], what: str
) -> Steps[Any]:
    """POST ``body``; anything but success fails the contacts with ``what`` (not resent:
    the engine already retried 429 / 5xx)."""
    response = yield Request(
        "POST", path, json=body, contacts=contacts, plan_response=Response(200, b"ok")
    )
    assert response is not None
    if not response.is_success:
        raise RequestFailed(
            f"{what}: HTTP {response.status_code}",
            status_code=response.status_code,
            retryable=False,
        )


def change_segments(
    segments: SegmentIds,
    action: str,
    names: Sequence[str],
    key: str,
    ids: Sequence[int | str],
    contacts: tuple[int, ...],
) -> Steps[Any]:
    """Attach or detach ``ids`` (never an empty list: an empty detach empties the segment)."""
    for name in names:
        segment_id = yield from segments.resolve(name, contacts)
        for start in range(0, len(ids), MAX_SEGMENT_IDS):
            yield from _post_required(
                f"/api/v1/group/{segment_id}/contacts/{action}",
                {key: list(ids[start : start + MAX_SEGMENT_IDS])},
                contacts,
                f"{action} segment {name!r}",
            )


def change_unsubscribed(
    action: str, emails: Sequence[str], contacts: tuple[int, ...]
) -> Steps[Any]:
    if emails:
        yield from _post_required(
            f"/api/v1/emails/unsubscribed/{action}",
            {"emails": list(emails)},
            contacts,
            "updating the unsubscribed list",
        )


def _follow_ups(
    segments: SegmentIds,
    items: Sequence[Item],
    ids: Mapping[int, str | None],
    *,
    with_segments: bool = True,
) -> Steps[Any]:
    """Segment changes (unless ``with_segments`` is false: a bulk import applied them)
    and unsubscribed-list changes for the written ``items``."""
    contacts = tuple(item.index for item in items)
    by_segment: dict[tuple[str, str], dict[str, list[int | str]]] = {}
    for item in items if with_segments else ():
        payload = item.payload
        ext = payload.body.get("externalCustomerId")
        remote = ids.get(item.index)
        # Prefer external ids (the contact's own key); else the id Yespo answered or a
        # verified 409 found.
        key, value = ("externalCustomerIds", ext) if ext else ("contactIds", remote)
        if value is None:
            continue
        for action, names in (("attach", payload.groups_add), ("detach", payload.groups_remove)):
            for name in names:
                bucket = by_segment.setdefault((action, name), {})
                bucket.setdefault(key, []).append(int(value) if key == "contactIds" else value)
    for (action, name), keyed in by_segment.items():
        for key, values in keyed.items():
            yield from change_segments(segments, action, [name], key, values, contacts)
    emails = {
        action: [
            str(item.payload.body["channels"][0]["value"])
            for item in items
            if item.payload.email_action == action and "email" in item.payload.fields
        ]
        for action in ("unsubscribe", "resubscribe")
    }
    yield from change_unsubscribed("add", emails["unsubscribe"], contacts)
    yield from change_unsubscribed("delete", emails["resubscribe"], contacts)


# --- real time ------------------------------------------------------------------------


def realtime(segments: SegmentIds, item: Item) -> Steps[Outcome]:
    """One contact in real time. A contact without external id or Yespo id is matched
    by Yespo on its email or phone, so it is first checked against the contacts it
    could land on (:func:`_guarded`)."""
    payload = item.payload
    if payload.remote_id is not None or payload.body.get("externalCustomerId"):
        return (yield from _realtime(segments, item))
    known = item.known.remote_id if item.known is not None else None
    # (Double opt-in goes through the subscribe method, which matches by email
    # whatever id is known: it is always checked.)
    if known is not None and known.isdigit() and payload.email_action != "confirm":
        # The state store's id of this very person in this account: written by it, so
        # Yespo's matching (which could pick another contact) is never asked.
        outcome = yield from _realtime(
            segments, _replace(item, evolve(payload, remote_id=int(known)))
        )
        stale = outcome.error is not None and outcome.error.status_code in (400, 404)
        if not stale:
            return outcome
        # The id names no contact any more (erased on Yespo): found again below.
    guarded = yield from _guarded(item)
    if isinstance(guarded, Outcome):
        return guarded
    return (yield from _realtime(segments, guarded))


def _realtime(segments: SegmentIds, item: Item) -> Steps[Outcome]:
    payload = item.payload
    contacts = (item.index,)
    if payload.email_action == "confirm":
        # Double opt-in: the subscribe method creates the contact unconfirmed and adds it
        # to segments by name itself.
        body: dict[str, Any] = {"contact": payload.body}
        if payload.groups_add:
            body["groups"] = list(payload.groups_add)
        request = Request(
            "POST",
            "/api/v1/contact/subscribe",
            json=body,
            contacts=contacts,
            plan_response=Response(200, b'{"id": 0, "new": true}'),
            # It emails a confirmation request: never sent twice.
            safe_to_resend=False,
        )
    elif payload.remote_id is not None:
        request = Request(
            "PUT",
            f"/api/v1/contact/{payload.remote_id}",
            json=payload.body,
            contacts=contacts,
            plan_response=Response(200, b"ok"),
        )
    else:
        request = Request(
            "POST",
            "/api/v1/contact",
            json=payload.body,
            contacts=contacts,
            plan_response=Response(200, b'{"id": 0}'),
        )
    notes: list[str] = []
    remote_id: int | str | None
    response = yield request
    assert response is not None
    if response.status_code == 409:
        settled = yield from _conflict(item, notes)
        if isinstance(settled, Outcome):
            return settled
        status, remote_id = settled
    elif not response.is_success:
        return failed(item, platform_error(response, "Yespo refused the contact"))
    else:
        answer = response.json()
        found = as_int(answer.get("id")) if isinstance(answer, Mapping) else None
        remote_id = found if found is not None else payload.remote_id
        # POST /contact answers only the id (IDResult): created or updated, it does not
        # say. A PUT by id updates a contact that exists (an unknown id is refused), and
        # the subscribe method says ``new``.
        status = Status.UPDATED if payload.remote_id is not None else Status.WRITTEN
        if payload.email_action == "confirm" and isinstance(answer, Mapping):
            new = answer.get("new")
            if new is True:
                status = Status.CREATED
            elif new is False:
                status = Status.UPDATED
            else:
                status = Status.WRITTEN
            notes.extend(_subscribe_notes(answer.get("emailStatus")))
    remote = None if remote_id is None else str(remote_id)
    follow = payload
    if payload.email_action == "confirm" and response.status_code != 409:
        # The subscribe request added its segments by name; after a 409 nothing says it
        # did, so they are attached by id (attaching twice changes nothing).
        follow = _without_adds(payload)
    if (
        remote is None
        and not payload.body.get("externalCustomerId")
        and (follow.groups_add or follow.groups_remove)
    ):
        # A success without an id (the spec's IDResult always has one): the segments
        # cannot be changed, and the contact is not called written in them.
        error = OutcomeError(
            "platform_error",
            "Yespo answered without a contact id: segment changes were not sent",
            status_code=response.status_code,
            retryable=True,
        )
        return failed(item, error)
    warnings = tuple(notes)
    try:
        yield from _follow_ups(segments, [_replace(item, follow)], {item.index: remote})
    except RequestFailed as exc:
        return failed(
            item, OutcomeError("platform_error", str(exc), status_code=exc.status_code), remote
        )
    return Outcome(item.index, status, remote_id=remote, warnings=warnings)


def _conflict(item: Item, notes: list[str]) -> Steps[tuple[Status, str] | Outcome]:
    """After a real-time 409: the status and id the look-up proves, or the outcome."""
    payload = item.payload
    contacts = (item.index,)
    # "Repeated request within 1 minute": an identical request reached Yespo
    # shortly before (this run's own attempt whose answer was lost, or an earlier
    # run's). Yespo does not say which requests it calls repeated, nor what came of
    # that earlier one, so the 409 is never trusted: the contact is looked up, and
    # is ``written`` (never ``unchanged``: this run did send it, and nothing says
    # whether the earlier request created the contact) only when Yespo holds what
    # this request set, or once this request's data is written by the contact's id.
    try:
        confirmed, problem, target = yield from verify_conflict(payload, contacts)
    except RequestFailed as exc:
        notes.append("Yespo's 409 could not be checked: it is unknown what Yespo holds")
        # The identical request was applied (or is being applied) within the minute,
        # and what Yespo holds now is unknown: not "not applied", and not offered
        # for an unconditional resend.
        error = OutcomeError(
            "outcome_unknown",
            "Yespo answered 409 (repeated request within 1 minute) and the contact "
            f"could not be looked up ({exc}): an identical request reached Yespo "
            "within the minute, whether Yespo holds this data is unknown; check the "
            "contact on Yespo before sending it again",
            status_code=409,
        )
        return Outcome(item.index, Status.FAILED, error=error, warnings=tuple(notes))
    if confirmed is None and target is not None and payload.email_action != "confirm":
        # The contact holding the external id holds other values: the identical
        # request was applied, then something else was written (a later row of this
        # person, another run, the UI). This row's data is not on Yespo, and
        # resending it would be refused again within the minute; written by that id
        # instead (a PUT is not the same request), as the upsert would have done.
        rewrite = yield Request(
            "PUT",
            f"/api/v1/contact/{target}",
            json=payload.body,
            contacts=contacts,
            plan_response=Response(200, b"ok"),
        )
        assert rewrite is not None
        if rewrite.status_code == 409:
            # The same PUT within the minute: this run's own, its answer lost? Read
            # the contact again rather than trust either answer.
            try:
                record = yield from _get_contact(target, contacts, payload.body)
            except RequestFailed as exc:
                error = OutcomeError(
                    "outcome_unknown",
                    f"Yespo answered 409 to writing the contact by id {target}, and it "
                    f"could not be read back ({exc}); check it on Yespo before sending "
                    "it again",
                    status_code=409,
                )
                return Outcome(item.index, Status.FAILED, error=error, warnings=tuple(notes))
            if record is not None and not differences(payload.body, record):
                confirmed, problem = str(target), ""
            else:
                problem += f"; writing it by id {target} got HTTP 409, not confirmed"
        elif rewrite.is_success:
            confirmed, problem = str(target), ""
        else:
            problem += f"; writing it by id {target} got HTTP {rewrite.status_code}"
    if confirmed is None:
        # Yespo holds something else (changed since, deleted, or several contacts
        # hold it): this request was refused, not applied.
        error = OutcomeError(
            "request_failed",
            "Yespo answered 409 (repeated request within 1 minute), not confirmed: "
            f"{problem}; send again",
            status_code=409,
            retryable=True,
        )
        return Outcome(item.index, Status.FAILED, error=error, warnings=tuple(notes))
    # A PUT by id only ever updates (Yespo refuses an id it does not hold), and the
    # look-up read that very id: it existed. Otherwise nothing says who created it.
    put = payload.remote_id is not None or target is not None
    return Status.UPDATED if put else Status.WRITTEN, confirmed


# --- two people Yespo could fold into one (rule 7) -------------------------------------


def _same_address(a: object, b: object) -> bool:
    """Two addresses as one person: the part before ``@`` exact, the domain in any
    letter case. Yespo's own equality is undocumented (its search and matching may
    ignore case): the finer rule keeps apart what it could treat as two."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    local_a, _, domain_a = a.rpartition("@")
    local_b, _, domain_b = b.rpartition("@")
    return local_a == local_b and domain_a.lower() == domain_b.lower()


def _channel(record: Mapping[str, Any], kind: str) -> str | None:
    channels = record.get("channels") or []
    return next(
        (str(c.get("value")) for c in one_or_many(channels)
         if isinstance(c, Mapping) and c.get("type") == kind),
        None,
    )  # fmt: skip


def _guarded(item: Item) -> Steps[Item | Outcome]:
    """Before ``POST /api/v1/contact`` for a contact without external id: Yespo updates
    the most recently updated contact with the same email *or* phone, whoever that is.
    The contacts it could match are looked up (by email, by phone). When every one is
    this person's (no external id, this very email) or there is none, the contact is
    sent as it is; when another person's is among them (another email that differs
    but for letter case, the same phone under another email, or an external id, which
    makes it someone this row cannot be told to be), the write goes by the id of the
    one contact that is this person's, and with none it is ``rejected``
    (``identity_conflict``), nothing sent."""
    payload = item.payload
    contacts = (item.index,)
    email = _channel(payload.body, "email")
    phone = _channel(payload.body, "sms")
    found: dict[int, Mapping[str, Any]] = {}
    for key, value in (("email", email), ("sms", phone)):
        if value is not None:
            for record in (yield from _search_records(key, value, contacts)):
                found.setdefault(int(record["id"]), record)
    own: list[int] = []
    others: list[str] = []
    for contact_id, record in sorted(found.items()):
        held = _channel(record, "email")
        if email is not None and not _same_address(held, email):
            others.append(f"{contact_id} (email {held!r})")
            continue
        if email is None and held is not None:
            others.append(f"{contact_id} (email {held!r})")
            continue
        # Search results carry no external id: the contact is read in full.
        full = yield from _get_contact(contact_id, contacts, payload.body)
        if full is None:
            continue
        if full.get("externalCustomerId"):
            others.append(f"{contact_id} (external id {full.get('externalCustomerId')!r})")
        else:
            own.append(contact_id)
    if not others:
        return item
    if own and payload.email_action != "confirm":
        # Written by the id of this person's own contact: Yespo's matching is not asked.
        return _replace(item, evolve(payload, remote_id=max(own)))
    return Outcome(
        item.index,
        Status.REJECTED,
        error=OutcomeError(
            ErrorCode.IDENTITY_CONFLICT,
            "this contact has no external id, and Yespo could match it by email or phone "
            f"to another person's contact: {', '.join(others)}; nothing was sent",
        ),
    )


def _search_records(
    key: str, value: str, contacts: tuple[int, ...]
) -> Steps[list[Mapping[str, Any]]]:
    """Every contact (thin search results, with their channels) whose ``key`` is
    ``value`` as Yespo's search matches it, every page read."""
    found: list[Mapping[str, Any]] = []
    start = 1
    while True:
        response = yield Request(
            "GET",
            f"/api/v1/contacts?{key}={quote(value)}&startindex={start}&maxrows={SEARCH_PAGE}",
            contacts=contacts,
            read_only=True,
            plan_response=Response(200, b"[]"),
        )
        assert response is not None
        if not response.is_success:
            raise RequestFailed(f"searching contacts: HTTP {response.status_code}")
        page = [
            c for c in one_or_many(response.json())
            if isinstance(c, Mapping) and as_int(c.get("id")) is not None
        ]  # fmt: skip
        found += [{**c, "id": as_int(c.get("id"))} for c in page]
        if len(page) < SEARCH_PAGE:
            return found
        start += len(page)


SEARCH_PAGE = 500
"""``maxrows`` of ``GET /api/v1/contacts`` is at most 500."""


# --- verifying a 409 -----------------------------------------------------------------

# A look-up finding more contacts than this is not read through (each costs a GET).
MAX_CANDIDATES = 10
_PLAIN_KEYS = ("firstName", "lastName", "externalCustomerId", "languageCode", "timeZone",
               "contactKey")  # fmt: skip


def verify_conflict(
    payload: YespoPayload, contacts: tuple[int, ...]
) -> Steps[tuple[str | None, str, int | None]]:
    """Look up the contact a 409 was about; return ``(id, "", None)`` when Yespo holds
    every value the request set, else ``(None, why, target)``: ``target`` is the one
    contact holding the request's external id when it holds other values (the contact
    the request was for), else ``None``.

    The look-up follows Yespo's matching: the id of a ``PUT``; else the external id;
    else the email, else the phone (``GET /api/v1/contacts``, whose thin results are
    read in full with ``GET /api/v1/contact/{id}``)."""
    body = payload.body
    if payload.remote_id is not None:
        candidates: list[int] = [payload.remote_id]
        what = f"id {payload.remote_id}"
    else:
        ext = body.get("externalCustomerId")
        if ext:
            key, value, what = "externalCustomerId", str(ext), "its external id"
        else:
            channel = next(
                (c for c in body["channels"] if c["type"] == "email"), body["channels"][0]
            )
            key, value = str(channel["type"]), str(channel["value"])
            what = "its email" if key == "email" else "its phone"
        candidates = yield from _search(key, value, contacts)
        if not candidates:
            return None, f"no contact has {what}", None
        if len(candidates) > MAX_CANDIDATES:
            return None, f"more than {MAX_CANDIDATES} contacts have {what}", None
    matching: list[int] = []
    differing: list[int] = []
    problems: list[str] = []
    for contact_id in candidates:
        record = yield from _get_contact(contact_id, contacts, body)
        if record is None:
            problems.append(f"contact {contact_id} was not found")
            continue
        differs = differences(body, record)
        if differs:
            problems.append(f"contact {contact_id} differs in {', '.join(differs)}")
            differing.append(contact_id)
        else:
            matching.append(contact_id)
    if len(matching) == 1:
        return str(matching[0]), "", None
    if matching:
        return (
            None,
            (
                f"{len(matching)} contacts with {what} hold these values: "
                "which one Yespo matched cannot be told"
            ),
            None,
        )
    # Only a contact found by the external id alone is surely the one the request was
    # for (an email or phone may be shared; a PUT's 409 is about that very id).
    by_external = payload.remote_id is None and bool(body.get("externalCustomerId"))
    target = differing[0] if by_external and differing == candidates else None
    return None, "; ".join(problems), target


def _search(key: str, value: str, contacts: tuple[int, ...]) -> Steps[list[int]]:
    response = yield Request(
        "GET",
        f"/api/v1/contacts?{key}={quote(value)}&maxrows={MAX_CANDIDATES + 1}",
        contacts=contacts,
        read_only=True,
        plan_response=Response(200, b'[{"id": 0}]'),
    )
    assert response is not None
    if not response.is_success:
        raise RequestFailed(f"searching contacts: HTTP {response.status_code}")
    found = (as_int(c.get("id")) for c in one_or_many(response.json()) if isinstance(c, Mapping))
    return [i for i in found if i is not None]


def _get_contact(
    contact_id: int, contacts: tuple[int, ...], planned: Mapping[str, Any]
) -> Steps[Mapping[str, Any] | None]:
    response = yield Request(
        "GET",
        f"/api/v1/contact/{contact_id}",
        contacts=contacts,
        read_only=True,
        # plan assumes the look-up confirms the 409.
        plan_response=Response(200, json.dumps({**planned, "id": contact_id}).encode()),
    )
    assert response is not None
    if response.status_code == 404:
        return None
    if not response.is_success:
        raise RequestFailed(f"reading contact {contact_id}: HTTP {response.status_code}")
    record = response.json()
    return record if isinstance(record, Mapping) else None


def differences(sent: Mapping[str, Any], held: Mapping[str, Any]) -> list[str]:
    """The names of the values ``sent`` sets that ``held`` does not hold (only what the
    request set is compared: a partial update leaves the rest alone)."""
    out = [k for k in _PLAIN_KEYS if k in sent and _text(held.get(k)) != _text(sent[k])]
    if (
        "addressBookId" in sent
        and held.get("addressBookId") is not None
        and as_int(held.get("addressBookId")) != as_int(sent["addressBookId"])
    ):
        out.append("addressBookId")
    held_channels = [c for c in one_or_many(held.get("channels")) if isinstance(c, Mapping)]
    for channel in sent.get("channels", []):
        kind = str(channel["type"])
        values = {_norm(kind, str(c.get("value"))) for c in held_channels if c.get("type") == kind}
        if _norm(kind, str(channel["value"])) not in values:
            out.append(kind)
    held_address = held.get("address")
    if not isinstance(held_address, Mapping):
        held_address = {}
    for part, value in (sent.get("address") or {}).items():
        if _text(held_address.get(part)) != _text(value):
            out.append(f"address.{part}")
    held_fields = {
        as_int(f.get("id")): f.get("value")
        for f in one_or_many(held.get("fields"))
        if isinstance(f, Mapping)
    }
    for field in sent.get("fields", []):
        field_id = as_int(field["id"])
        if field_id not in held_fields or _text(held_fields[field_id]) != _text(field["value"]):
            out.append(f"fields.{field['id']}")
    return out


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _subscribe_notes(email_status: Any) -> list[str]:
    """What ``/contact/subscribe``'s ``emailStatus`` means for a pending contact."""
    if email_status in (None, "NEED_CONFIRMATION"):
        return []
    if email_status == "BLACKLISTED":
        return [
            "Yespo answered emailStatus BLACKLISTED: the address is on the account's "
            "unsubscribed list, so it stays unsubscribed and no confirmation was asked for"
        ]
    if email_status == "ALREADY_SUBSCRIBED":
        return ["Yespo answered emailStatus ALREADY_SUBSCRIBED: no confirmation was asked for"]
    if email_status == "SUBSCRIBED":
        return ["Yespo answered emailStatus SUBSCRIBED: subscribed without a confirmation"]
    return [f"Yespo answered an undocumented emailStatus {email_status!r}"]


def _without_adds(payload: YespoPayload) -> YespoPayload:
    return evolve(payload, groups_add=())


def _replace(item: Item, payload: YespoPayload) -> Item:
    return evolve(item, payload=payload)


# --- bulk -----------------------------------------------------------------------------


def bulk_body(options: YespoOptions, batch: Sequence[Item]) -> dict[str, Any]:
    first = batch[0].payload
    ext_ids = "externalCustomerId" in first.fields  # the same for every contact (batch_key)
    body: dict[str, Any] = {
        "contacts": [item.payload.body for item in batch],
        # An external id is the only key of a contact that has one: with dedupeOn=email
        # Yespo would match an unknown external id by email and write it onto that
        # record, even one holding another external id (two people merged), and would
        # keep the old email of a contact found by its external id (never updated).
        "dedupeOn": "externalCustomerId" if ext_ids else options.dedupe_on,
        # Always explicit: omitted, Yespo writes every standard field and nulls the
        # ones a contact did not carry. Every contact in a batch carries these same fields.
        "contactFields": sorted(first.fields),
        "customFieldsIDs": list(first.custom_ids),
        "restoreDeleted": options.restore_deleted,
    }
    if first.groups_add:
        body["groupNames"] = list(first.groups_add)
    if first.groups_remove:
        body["groupNamesExclude"] = list(first.groups_remove)
    if options.event_key_for_new_contacts:
        body["eventKeyForNewContacts"] = options.event_key_for_new_contacts
    return body


def _keys(payload: YespoPayload) -> list[str]:
    """Values Yespo may report a contact under: external id, then its channels."""
    keys = []
    ext = payload.body.get("externalCustomerId")
    if ext:
        keys.append(f"ext:{ext}")
    for channel in payload.body["channels"]:
        keys.append(f"{channel['type']}:{_norm(channel['type'], channel['value'])}")
    if payload.remote_id is not None:
        keys.append(f"id:{payload.remote_id}")
    return keys


def _norm(kind: str, value: str) -> str:
    if kind == "sms":
        return "".join(ch for ch in value if ch.isdigit())
    return value.strip().lower()


def _failed_keys(failed: Mapping[str, Any]) -> list[str]:
    keys = []
    ext = failed.get("externalCustomerId")
    if ext:
        keys.append(f"ext:{ext}")
    for channel in one_or_many(failed.get("channels")):
        if isinstance(channel, Mapping) and channel.get("type") and channel.get("value"):
            keys.append(f"{channel['type']}:{_norm(str(channel['type']), str(channel['value']))}")
    contact_id = as_int(failed.get("id"))
    if contact_id is not None:
        keys.append(f"id:{contact_id}")
    return keys


def _mapped_keys(value: str) -> list[str]:
    # A dedupeValue is an external id, an email or a phone: try each reading.
    return [
        f"ext:{value}",
        f"email:{_norm('email', value)}",
        f"sms:{_norm('sms', value)}",
        f"id:{value}",
    ]


def guarded_bulk(
    options: YespoOptions, segments: SegmentIds, batch: Sequence[Item]
) -> Steps[list[Outcome]]:
    """Bulk for contacts without external id. ``dedupeOn`` (email or phone) lands such
    a contact on whichever contact holds that value, another person's too (rule 7):
    each is first looked up as in real time (:func:`_guarded`). Only those whose
    matches are none or the person's own go into the import; one with another person's
    contact among its matches is written by its own contact's id (``PUT``), or with
    none is ``rejected`` (``identity_conflict``), never sent. The import goes first:
    should Yespo refuse it as a whole, the engine splits the batch with nothing of it
    written yet."""
    outcomes: dict[int, Outcome] = {}
    clean: list[Item] = []
    by_id: list[Item] = []
    for item in batch:
        try:
            guarded = yield from _guarded(item)
        except RequestFailed as exc:
            outcomes[item.index] = failed_outcome(item, exc)
            continue
        if isinstance(guarded, Outcome):
            outcomes[item.index] = guarded
        elif guarded is item:
            clean.append(item)
        else:
            by_id.append(guarded)
    if clean:
        for outcome in (yield from bulk(options, segments, clean)):
            outcomes[outcome.index] = outcome
    for item in by_id:
        try:
            outcomes[item.index] = yield from _realtime(segments, item)
        except RequestFailed as exc:
            outcomes[item.index] = failed_outcome(item, exc)
    return [outcomes[item.index] for item in batch]


def bulk(
    options: YespoOptions, segments: SegmentIds, batch: Sequence[Item]
) -> Steps[list[Outcome]]:
    contacts = tuple(item.index for item in batch)
    planned_session = json.dumps({"asyncSessionId": "planned"}).encode()
    response = yield Request(
        "POST",
        "/api/v1/contacts",
        json=bulk_body(options, batch),
        contacts=contacts,
        plan_response=Response(200, planned_session),
    )
    assert response is not None
    if not response.is_success:
        error = platform_error(response, "Yespo refused the bulk request")
        if 400 <= response.status_code < 500 and len(batch) > 1:
            # Refused for its body: the engine sends each half again, to find the
            # contacts Yespo objects to and write the others.
            raise BatchRefused(error.message, status_code=response.status_code)
        return [failed(item, error) for item in batch]
    result = response.json() if isinstance(response.json(), Mapping) else {}

    # Each contact's keys, worked out once: matched against the refusals, the planned
    # answer and the import's mapping.
    keys = {item.index: _keys(item.payload) for item in batch}
    by_key: dict[str, list[Item]] = {}
    for item in batch:
        for key in keys[item.index]:
            by_key.setdefault(key, []).append(item)
    outcomes: dict[int, Outcome] = {}
    for refusal in one_or_many(result.get("failedContacts")):
        if not isinstance(refusal, Mapping):
            continue
        reason = str(refusal.get("error") or "refused by Yespo")
        for key in _failed_keys(refusal):
            for item in by_key.get(key, []):
                outcomes.setdefault(
                    item.index, failed(item, OutcomeError("platform_error", reason))
                )
    session = result.get("asyncSessionId")
    pending = [item for item in batch if item.index not in outcomes]
    if not session or not pending:
        message = str(result.get("errorMessage") or "Yespo started no import session")
        for item in pending:
            outcomes[item.index] = failed(item, OutcomeError("platform_error", message))
        return [outcomes[item.index] for item in batch]

    status = yield from _poll(options, str(session), pending, keys, contacts)
    state = str(status.get("status") or "").upper()
    ids: dict[str, int] = {}
    for entry in one_or_many(status.get("mapping")):
        if isinstance(entry, Mapping):
            contact_id = as_int(entry.get("contactId"))
            if contact_id is not None:
                for key in _mapped_keys(str(entry.get("dedupeValue"))):
                    ids.setdefault(key, contact_id)
    written = []
    for item in pending:
        found = next((ids[k] for k in keys[item.index] if k in ids), None)
        if found is None:
            message = (
                f"import session ended with {state}: {status.get('description') or 'no detail'}"
                if state != "FINISHED"
                else "Yespo's import reported no id for this contact (skipped, e.g. deleted)"
            )
            outcomes[item.index] = failed(item, OutcomeError("platform_error", message))
        else:
            # The import's mapping pairs keys with ids, created or updated alike.
            outcomes[item.index] = Outcome(item.index, Status.WRITTEN, remote_id=str(found))
            written.append(item)
    try:
        # groupNames / groupNamesExclude already applied the segment changes.
        yield from _follow_ups(segments, written, {}, with_segments=False)
    except RequestFailed as exc:
        error = OutcomeError("platform_error", str(exc), status_code=exc.status_code)
        for item in written:
            outcomes[item.index] = failed(item, error, outcomes[item.index].remote_id)
    return [outcomes[item.index] for item in batch]


def _poll(
    options: YespoOptions,
    session: str,
    pending: Sequence[Item],
    keys: Mapping[int, list[str]],
    contacts: tuple[int, ...],
) -> Steps[Mapping[str, Any]]:
    planned = {
        "status": "FINISHED",
        "mapping": [
            {"dedupeValue": keys[item.index][0].split(":", 1)[1], "contactId": 0}
            for item in pending
        ],
    }
    # Encoded once, not per poll: a full batch's mapping is 3,000 entries.
    plan_response = Response(200, json.dumps(planned).encode())
    delay, waited = options.poll_interval, 0.0
    while True:
        yield Sleep(delay)
        waited += delay
        response = yield Request(
            "GET",
            f"/api/v1/importstatus/{quote(session)}",
            contacts=contacts,
            plan_response=plan_response,
        )
        assert response is not None
        if response.is_success:
            status = response.json()
            state = str(status.get("status", "")).upper() if isinstance(status, Mapping) else ""
            if state in ("FINISHED", "ERROR"):
                assert isinstance(status, Mapping)
                return status
            if state not in _IN_PROGRESS:
                # Not a value Yespo documents: never polled until poll_timeout.
                return {
                    "status": "UNKNOWN",
                    "description": f"undocumented import status {state or response.text[:100]!r}",
                }
        if waited >= options.poll_timeout:
            return {"status": "TIMEOUT", "description": f"still running after {waited:.0f} s"}
        delay = min(delay * 1.5, MAX_POLL_WAIT)
