"""The reference model: what each platform must hold after a run, and what each outcome
may claim, from DESIGN's rules and the platform notes' identity rules alone.

It imports nothing from ``contactsync``, ``providers/`` or the emulators. It reads the
platforms' records as plain dicts (``GET /__emulator__/contacts``), the input rows the
test wrote, the report's statuses (claims to check, never evidence) and the emulator's
request log (which request carried which row, and which fault it met).

Every input row carries a unique token in its ``loyalty`` custom field, so a record
names the one row whose data it holds; seeded records carry tokens of their own.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

INVARIANTS = {
    "one_outcome": "one outcome per input row",
    "one_record": "the platform holds one record per person",
    "own_data": "a record holds its person's data and nobody else's",
    "untouched": "no record changes that the input did not name",
    "created": "created is a record that did not exist before",
    "updated": "updated is a record that existed",
    "status": "unchanged sent nothing; failed was not applied (but for outcome_unknown, interrupted)",
    "unknown": "outcome_unknown only where the fault log shows the request may have applied",
    "newest": "a person's record holds their newest confirmed row, never older (replays too)",
    "reaches": "with no faults every valid row's data reaches the platform",
    "repeat_zero": "a repeat of an unchanged input with a state store sends 0 requests",
}
SUCCESS = frozenset({"created", "updated", "written", "unchanged"})
MAY_HAVE_APPLIED = frozenset({"outcome_unknown", "interrupted"})
APPLIED_FAULTS = frozenset({"lost", "slow"})
"""Fault kinds after which the emulator applied the request (the answer was lost or late)."""
MAY_HAVE_APPLIED_FAULTS = APPLIED_FAULTS | {"drop"}
"""Fault kinds after which a client cannot know the request was not applied: a dropped
connection (the emulator closes it without applying) looks on the wire exactly like a
lost answer (it closes it after applying), so ``outcome_unknown`` is true of both."""


# --- identity, from the platform notes ----------------------------------------------


def email_key(email: str | None) -> str | None:
    """An address as a key that never merges two addresses a platform could treat as
    two: the local part exact (no casefolding, no NFKC), the domain lower-cased."""
    if not email:
        return None
    local, _, domain = email.strip().rpartition("@")
    return f"{local}@{domain.lower()}"


def phone_key(phone: str | None) -> str | None:
    """E.164 digits for the test's numbers (all British: a leading 0 is +44)."""
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    return "44" + digits[1:] if digits.startswith("0") else digits


def matched_email(email: str | None) -> str | None:
    """An address as a platform may compare it when it matches records: letter case
    folded (the emulators do; no platform documents it either way), ``ß`` and ``ss``
    still two. Two rows the platform may land on one record are one person: the
    later row's data must win, and the earlier one must not come back."""
    key = email_key(email)
    return None if key is None else key.lower()


def person_of(provider: str, row: Mapping[str, Any]) -> tuple[str, ...]:
    """A person is the row's external id, else the platform's documented identity key
    (Gleantap: email + first name, else phone + first name; iVvy: first name + last name
    + email; Yespo: the email it dedupes on), text in NFC (one name however composed)."""
    ext = unicodedata.normalize("NFC", (row.get("external_id") or "").strip())
    if ext:
        return ("ext", ext)
    first = unicodedata.normalize("NFC", row.get("first_name") or "")
    email = matched_email(row.get("email"))
    if provider == "gleantap":
        if email:
            return ("email+first", email, first)
        return ("phone+first", phone_key(row.get("phone")) or "", first)
    if provider == "ivvy":
        return ("name+email", first, row.get("last_name") or "", email or "")
    return ("email", email or "")


def record_people(provider: str, view: Mapping[str, Any]) -> set[tuple[str, ...]]:
    """Who a record is: its external id's person, and (for rows without an external
    id, which the platform matches by its documented key) its key's."""
    return {person_of(provider, view), person_of(provider, {**view, "external_id": None})}


# --- the platforms' records as the model sees them ------------------------------------


def view(provider: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    """One emulator record (``/__emulator__/contacts``) in neutral names."""
    if provider == "gleantap":
        return {"id": str(rec["_id"]), "external_id": rec.get("user_id"),
                "first_name": rec.get("first_name"), "last_name": rec.get("last_name"),
                "email": rec.get("email"), "phone": rec.get("phone"),
                "token": rec.get("loyalty")}  # fmt: skip
    if provider == "ivvy":
        fields = {f["fieldId"]: f["value"] for f in rec.get("customFields", [])}
        return {"id": str(rec["id"]), "external_id": rec.get("externalId"),
                "first_name": rec.get("firstName"), "last_name": rec.get("lastName"),
                "email": rec.get("email"), "phone": rec.get("phone"),
                "token": fields.get(501)}  # fmt: skip
    channels = {c["type"]: c["value"] for c in rec.get("channels", [])}
    fields = {f["id"]: f["value"] for f in rec.get("fields", [])}
    return {"id": str(rec["id"]), "external_id": rec.get("externalCustomerId"),
            "first_name": rec.get("firstName"), "last_name": rec.get("lastName"),
            "email": channels.get("email"), "phone": channels.get("sms"),
            "token": fields.get(1001)}  # fmt: skip


# --- rows and the model's memory ------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One input row as the test wrote it. ``seq`` orders rows across runs: the run's
    start order, then the position in its input (a replayed row keeps its own)."""

    seq: int
    token: str
    data: Mapping[str, Any]


@dataclass
class Account:
    """The model of one platform account: its seeded records and, per person, the
    newest row seen confirmed there (data must never move back past it)."""

    name: str
    seeded: dict[str, dict[str, Any]] = field(default_factory=dict)
    newest: dict[tuple[str, ...], int] = field(default_factory=dict)
    named: set[tuple[str, ...]] = field(default_factory=set)
    """Persons the input named on this account (their records may change)."""


@dataclass
class Run:
    """What one run was given and what it left: the checks' input."""

    provider: str
    rows: Sequence[Row]
    outcomes: Sequence[Mapping[str, Any]]
    before: Mapping[str, dict[str, Any]]
    after: Mapping[str, dict[str, Any]]
    log: Sequence[tuple[str | None, bytes]]
    """(fault kind or None, request body) of every request the emulator saw."""
    faults: bool


def _compact(view: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in view.items() if v is not None)


def _same_data(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "id"} == {k: v for k, v in b.items() if k != "id"}


def check_run(  # noqa: PLR0915 - one function: the invariants read top to bottom
    account: Account, run: Run, rows_by_token: Mapping[str, Row]
) -> list[tuple[str, str]]:
    """Every safety and liveness invariant for one run; returns the violations, each a
    readable line (the person, the expected record, the actual record) under the name
    of the invariant it breaks (:data:`INVARIANTS`)."""
    bad: list[tuple[str, str]] = []
    p = run.provider
    people = {r.token: person_of(p, r.data) for r in run.rows}
    by_index: dict[int, Mapping[str, Any]] = {}
    for o in run.outcomes:
        if o["index"] in by_index:
            bad.append(("one_outcome", f"row {o['index']}: two outcomes"))
        by_index[o["index"]] = o
    # One outcome per input row.
    if sorted(by_index) != list(range(len(run.rows))):
        bad.append(
            ("one_outcome", f"outcomes for rows {sorted(by_index)}, input has {len(run.rows)} rows")
        )
    owner: dict[str, tuple[str, ...]] = {}  # record id -> person whose row it holds
    for rid, rec in run.after.items():
        row = rows_by_token.get(rec["token"] or "")
        if row is not None:
            owner[rid] = person_of(p, row.data)
    # One record per person.
    held: dict[tuple[str, ...], list[str]] = {}
    for rid, who in owner.items():
        held.setdefault(who, []).append(rid)
    for who, ids in held.items():
        if len(ids) > 1:
            recs = "; ".join(_compact(run.after[i]) for i in ids)
            bad.append(
                ("one_record", f"person {who}: one record expected, {len(ids)} held: {recs}")
            )
    # Nobody else's data: a record holding a person's row has that person's identity.
    for rid, who in owner.items():
        rec = run.after[rid]
        if who[0] == "ext" and (rec["external_id"] or "").strip() != who[1]:
            bad.append(
                (
                    "own_data",
                    f"person {who}: record carries external id {rec['external_id']!r}: {_compact(rec)}",
                )
            )
        if who[0] != "ext" and who not in record_people(p, rec):
            bad.append(("own_data", f"person {who}: record is someone else's: {_compact(rec)}"))
    # No record changes that the input did not name. A record without an external id
    # that a row's email matched may be adopted, and the row's outcome says so.
    named = account.named | set(people.values())
    for index, row in enumerate(run.rows):
        warnings = (by_index.get(index) or {}).get("warnings") or []
        if any("adopted_by_email" in w for w in warnings):
            named.add(person_of(p, {**row.data, "external_id": None}))
    for rid, seed in account.seeded.items():
        now = run.after.get(rid)
        if now is not None and _same_data(now, seed):
            continue
        if now is None or not record_people(p, seed) & named:
            actual = _compact(now) if now else "gone"
            bad.append(
                (
                    "untouched",
                    f"seeded record the input did not name changed: expected {_compact(seed)}, actual {actual}",
                )
            )
    account.named = named
    # Each status is true of the emulator.
    tokens_after = {rec["token"]: rid for rid, rec in run.after.items()}
    tokens_before = {rec["token"] for rec in run.before.values()}
    sent = [(fault, body) for fault, body in run.log]
    made: set[str] = set()  # records made in this run by an earlier row: updated is true
    seen: set[tuple[str, ...]] = set()
    for index, row in enumerate(run.rows):
        if index not in by_index:
            continue
        o = by_index[index]
        status, code = o["status"], (o.get("error") or {}).get("code")
        carried = [fault for fault, body in sent if row.token.encode() in body]
        here = tokens_after.get(row.token)
        what = f"row {index} ({people[row.token]}, {row.token}) {status}"
        claimed = o.get("remote_id")
        rid = claimed if isinstance(claimed, str) else ""
        if status == "created" and (rid in run.before or rid not in run.after):
            bad.append(("created", f"{what}: no new record {rid!r} on the platform"))
        # Updated is true of a record made in this run by an earlier row of the same
        # person (a failed row's write may have been applied: its answer lost).
        if (
            status == "updated"
            and rid not in run.before
            and rid not in made
            and people[row.token] not in seen
        ):
            bad.append(("updated", f"{what}: record {rid!r} did not exist before the run"))
        if status in SUCCESS and rid:
            made.add(rid)
        seen.add(people[row.token])
        if status == "unchanged" and carried:
            bad.append(("status", f"{what}: its data was sent in this run"))
        if status == "unchanged" and not here:
            bad.append(("status", f"{what}: the platform does not hold this data"))
        if (
            status == "failed"
            and code not in MAY_HAVE_APPLIED
            and here
            and row.token not in tokens_before
        ):
            bad.append(("status", f"{what} ({code}): applied: {_compact(run.after[here])}"))
        if code == "outcome_unknown" and not any(f in MAY_HAVE_APPLIED_FAULTS for f in carried):
            bad.append(
                (
                    "unknown",
                    f"{what}: outcome_unknown, but no request carrying it met a fault that applies it ({carried})",
                )
            )
    # The newest data wins and never moves back (a replayed --failed row included);
    # with no faults, every valid row's data reaches the platform.
    confirmed: dict[tuple[str, ...], int] = {}
    live: dict[tuple[str, ...], int] = {}
    for index, row in enumerate(run.rows):
        o = by_index.get(index, {})
        who = people[row.token]
        if o.get("status") in SUCCESS:
            confirmed[who] = max(confirmed.get(who, -1), row.seq)
        if not run.faults and _valid(o):
            live[who] = max(live.get(who, -1), row.seq)
    for who in set(confirmed) | set(live) | set(account.newest):
        ids = held.get(who, [])
        got = max((rows_by_token[run.after[i]["token"]].seq for i in ids), default=-1)
        floor = max(confirmed.get(who, -1), account.newest.get(who, -1))
        # Older data than confirmed is ``newest``; no data of the person at all (never
        # written, or another person's row took the record) is ``reaches``.
        older = "newest" if got >= 0 else "reaches"
        for kind, want in ((older, floor), ("reaches", max(floor, live.get(who, -1)))):
            if got < want:
                expected = next(r for r in rows_by_token.values() if r.seq == want)
                actual = _compact(run.after[ids[0]]) if ids else "no record"
                bad.append((kind, f"person {who}: expected the data of row seq {want} "
                                  f"({_compact(dict(expected.data))}), actual {actual}"))  # fmt: skip
                break  # older than confirmed is one break (newest), not two
        account.newest[who] = max(floor, got)
    return bad


def _valid(outcome: Mapping[str, Any]) -> bool:
    """A row the platform must end up holding when nothing failed: anything but a row
    rejected for two people the platform cannot tell apart (rule 7), or one left out
    for a later row of its person (``superseded``: that later row is the person's
    data; were it rejected, writing this older row instead would be older data)."""
    code = (outcome.get("error") or {}).get("code")
    if outcome.get("status") == "skipped" and outcome.get("reason") == "superseded":
        return False
    return not (outcome.get("status") == "rejected" and code == "identity_conflict")


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def seeded_views(provider: str, records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["id"]: v for v in (view(provider, r) for r in records)}


def observe(account: Account, run_provider: str, records: Iterable[dict[str, Any]],
            rows_by_token: Mapping[str, Row]) -> None:  # fmt: skip
    """What a run that left no report (killed) wrote: from now on no person's record may
    move back past what the platform holds."""
    for rec in records:
        row = rows_by_token.get(rec["token"] or "")
        if row is not None:
            who = person_of(run_provider, row.data)
            account.newest[who] = max(account.newest.get(who, -1), row.seq)
