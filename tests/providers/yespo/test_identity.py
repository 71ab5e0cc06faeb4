"""Rule 7 on Yespo's real-time upsert: a contact without external id is matched by
Yespo on its email or phone, so it is never sent where that match could be another
person's contact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contactsync import Client, Outcome, Status
from tests.providers.yespo.conftest import Yespo, channel, direct, yespo_config

Upsert = Callable[..., list[Outcome]]


def _seed(yespo: Yespo, email: str, ext: str | None = None, phone: str | None = None) -> int:
    channels = [{"type": "email", "value": email}]
    if phone:
        channels.append({"type": "sms", "value": phone})
    body: dict[str, Any] = {"firstName": "Seed", "channels": channels}
    if ext:
        body["externalCustomerId"] = ext
    answer = direct(yespo.emulator).post("/api/v1/contact", json=body)
    assert answer.is_success
    contact_id: int = answer.json()["id"]
    return contact_id


def _record(yespo: Yespo, contact_id: int) -> dict[str, Any]:
    (found,) = [c for c in yespo.stored() if c["id"] == contact_id]
    return found


def _writes(yespo: Yespo) -> list[str]:
    return [f"{r.method} {r.url.path}" for r in yespo.writes() if r.method != "GET"]


def test_a_row_without_external_id_never_lands_on_another_persons_contact(
    yespo: Yespo, upsert: Upsert
) -> None:
    # Another person: the same address under an external id of their own.
    theirs = _seed(yespo, "anna@example.com", ext="P1")
    (outcome,) = upsert([{"email": "anna@example.com", "first_name": "Zoë"}], mode="realtime")
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "identity_conflict"
    assert str(theirs) in outcome.error.message
    assert _writes(yespo) == []  # nothing sent
    assert _record(yespo, theirs)["firstName"] == "Seed"
    assert len(yespo.stored()) == 1


def test_an_address_differing_but_for_letter_case_is_another_person(
    yespo: Yespo, upsert: Upsert
) -> None:
    # Yespo's email equality is undocumented (its emulator ignores case, the unsafe
    # reading): Anna@ and anna@ are kept apart as two people.
    theirs = _seed(yespo, "Anna@example.com")
    (outcome,) = upsert([{"email": "anna@example.com", "first_name": "Zoë"}], mode="realtime")
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "identity_conflict"
    assert channel(_record(yespo, theirs), "email") == "Anna@example.com"


def test_a_shared_phone_under_another_email_is_another_person(yespo: Yespo, upsert: Upsert) -> None:
    theirs = _seed(yespo, "bob@example.com", phone="+447911100001")
    row = {"email": "carol@example.com", "phone": "07911 100001", "first_name": "Carol"}
    (outcome,) = upsert([row], mode="realtime")
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "identity_conflict"
    assert channel(_record(yespo, theirs), "email") == "bob@example.com"


def test_the_persons_own_contact_is_written_by_its_id_beside_another_match(
    yespo: Yespo, upsert: Upsert
) -> None:
    mine = _seed(yespo, "anna@example.com")
    theirs = _seed(yespo, "anna@example.com", ext="P1")  # updated last: Yespo's pick
    (outcome,) = upsert([{"email": "anna@example.com", "first_name": "Zoë"}], mode="realtime")
    assert outcome.status is Status.UPDATED
    assert outcome.remote_id == str(mine)
    assert _writes(yespo) == [f"PUT /api/v1/contact/{mine}"]
    assert _record(yespo, mine)["firstName"] == "Zoë"
    assert _record(yespo, theirs)["firstName"] == "Seed"


def test_no_match_or_only_the_persons_own_is_sent_as_before(yespo: Yespo, upsert: Upsert) -> None:
    (new,) = upsert([{"email": "solo@example.com", "first_name": "Solo"}], mode="realtime")
    assert new.status is Status.WRITTEN
    mine = _seed(yespo, "anna@example.com")
    (own,) = upsert([{"email": "anna@example.com", "first_name": "Zoë"}], mode="realtime")
    assert own.status is Status.WRITTEN
    assert own.remote_id == str(mine)
    assert _writes(yespo) == ["POST /api/v1/contact"] * 2


def test_rows_with_an_external_id_need_no_look_up(yespo: Yespo, upsert: Upsert) -> None:
    _seed(yespo, "anna@example.com")
    upsert([{"external_id": "P9", "email": "anna@example.com"}], mode="realtime")
    assert [r for r in yespo.transport.requests if r.url.path == "/api/v1/contacts"] == []


def test_the_state_stores_id_is_written_by_without_a_look_up(yespo: Yespo, tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    row = {"email": "anna@example.com", "first_name": "Zoë"}
    with Client(yespo_config(mode="realtime"), "y", transport=yespo.transport, state=state) as c:
        (first,) = c.upsert_many([row])
    # Another person's contact with this address appears (updated last: Yespo's pick).
    theirs = _seed(yespo, "anna@example.com", ext="P1")
    yespo.transport.requests.clear()
    with Client(yespo_config(mode="realtime"), "y", transport=yespo.transport, state=state) as c:
        (second,) = c.upsert_many([{**row, "first_name": "Zoe"}])
    assert second.status is Status.UPDATED
    assert second.remote_id == first.remote_id
    assert _writes(yespo) == [f"PUT /api/v1/contact/{first.remote_id}"]
    assert [r for r in yespo.transport.requests if r.url.path == "/api/v1/contacts"] == []
    assert _record(yespo, theirs)["firstName"] == "Seed"


def test_double_opt_in_is_checked_even_with_a_stored_id(yespo: Yespo, tmp_path: Path) -> None:
    # The subscribe method matches by email whatever id is known: never by-passed.
    state = f"sqlite:///{tmp_path / 'state.db'}"
    row = {"email": "anna@example.com", "first_name": "Zoë", "email_status": "pending"}
    with Client(yespo_config(mode="realtime"), "y", transport=yespo.transport, state=state) as c:
        (first,) = c.upsert_many([row])
    assert first.status is Status.CREATED
    theirs = _seed(yespo, "anna@example.com", ext="P1")
    yespo.transport.requests.clear()
    with Client(yespo_config(mode="realtime"), "y", transport=yespo.transport, state=state) as c:
        (second,) = c.upsert_many([{**row, "first_name": "Zoe"}])
    assert second.status is Status.REJECTED
    assert second.error is not None
    assert second.error.code == "identity_conflict"
    assert _writes(yespo) == []
    assert _record(yespo, theirs)["firstName"] == "Seed"


# --- bulk: a contact without external id is looked up before the import -------------


def _imports(yespo: Yespo) -> list[dict[str, Any]]:
    return [
        json.loads(r.content)
        for r in yespo.transport.requests
        if r.method == "POST" and r.url.path == "/api/v1/contacts"
    ]


def test_bulk_never_merges_a_row_without_external_id_onto_another_persons_contact(
    yespo: Yespo, upsert: Upsert
) -> None:
    # dedupeOn=email would land the row on the contact holding the address, another
    # person's (external id P1): it took the row's data and was reported written.
    theirs = _seed(yespo, "anna@example.com", ext="P1", phone="+447911100002")
    row = {"email": "anna@example.com", "phone": "+447911100001", "first_name": "Zoë"}
    for mode in ("bulk", "auto"):
        (outcome,) = upsert([row], mode=mode)
        assert outcome.status is Status.REJECTED
        assert outcome.error is not None
        assert outcome.error.code == "identity_conflict"
        assert str(theirs) in outcome.error.message
    assert _writes(yespo) == []  # nothing sent
    record = _record(yespo, theirs)
    assert record["firstName"] == "Seed"
    assert channel(record, "sms") == "+447911100002"
    assert len(yespo.stored()) == 1


def test_bulk_keeps_other_rows_in_the_import_and_writes_by_the_persons_own_id(
    yespo: Yespo, upsert: Upsert
) -> None:
    theirs = _seed(yespo, "anna@example.com", ext="P1")
    mine = _seed(yespo, "bob@example.com")
    _seed(yespo, "bob@example.com", ext="P2")  # another person at Bob's address
    rows = [
        {"email": "anna@example.com", "first_name": "Zoë"},
        {"email": "bob@example.com", "first_name": "Bob"},
        {"email": "cat@example.com", "first_name": "Cat"},
        {"email": "dan@example.com", "first_name": "Dan"},
        {"external_id": "P3", "email": "anna@example.com", "first_name": "Eve"},
    ]
    anna, bob, cat, dan, eve = upsert(rows, mode="bulk")
    assert anna.status is Status.REJECTED
    assert bob.status is Status.UPDATED
    assert bob.remote_id == str(mine)
    assert (cat.status, dan.status, eve.status) == (Status.WRITTEN,) * 3
    # One import for the clean rows without external id, one for the row with one;
    # the row with an external id is never looked up.
    imports = sorted(_imports(yespo), key=lambda body: body["dedupeOn"])
    assert [body["dedupeOn"] for body in imports] == ["email", "externalCustomerId"]
    assert [c["channels"][0]["value"] for c in imports[0]["contacts"]] == [
        "cat@example.com",
        "dan@example.com",
    ]
    searched = {r.url.params.get("email") for r in yespo.transport.requests
                if r.url.path == "/api/v1/contacts" and r.method == "GET"}  # fmt: skip
    assert "anna@example.com" in searched  # Zoë's row; Eve's (P3) needs none
    assert len([r for r in yespo.transport.requests if r.url.params.get("email")]) == 4
    assert _record(yespo, theirs)["firstName"] == "Seed"
    assert _record(yespo, mine)["firstName"] == "Bob"
    assert yespo.by_external("P3")["firstName"] == "Eve"


def test_bulk_without_a_stranger_is_one_import_as_before(yespo: Yespo, upsert: Upsert) -> None:
    mine = _seed(yespo, "anna@example.com")
    rows = [
        {"email": "anna@example.com", "first_name": "Zoë"},
        {"email": "new@example.com", "first_name": "New"},
    ]
    own, new = upsert(rows, mode="bulk")
    assert (own.status, new.status) == (Status.WRITTEN, Status.WRITTEN)
    assert own.remote_id == str(mine)
    assert len(_imports(yespo)) == 1
    assert _record(yespo, mine)["firstName"] == "Zoë"
    assert len(yespo.stored()) == 2
