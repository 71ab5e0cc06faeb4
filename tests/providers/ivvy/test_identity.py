"""Rule 7 on iVvy: a create with ``updateIfExists`` lands on any contact with the same
first name, last name and email, so for a contact whose external id no contact holds
those contacts are looked up first, and another person's is never written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from contactsync import Outcome, Status
from contactsync.testing import EmulatorApp, EmulatorTransport
from tests.providers.ivvy.conftest import Ivvy, Recording, ivvy_config

Upsert = Callable[..., list[Outcome]]
ROW = {"external_id": "P0", "first_name": "Anna", "last_name": "Smith",
       "email": "anna@example.com", "custom_fields": {"visits": 7}}  # fmt: skip


def _seed(ivvy: Ivvy, contact_id: int, email: str, ext: str | None) -> None:
    ivvy.emulator.insert({"id": contact_id, "firstName": "Anna", "lastName": "Smith",
                          "email": email, "phone": None, "externalId": ext,
                          "customFields": {502: 1}, "groups": {}, "companies": [],
                          "status": 1, "smsStatus": 1})  # fmt: skip


def _record(ivvy: Ivvy, contact_id: int) -> dict[str, Any]:
    (found,) = [c for c in ivvy.emulator.contacts() if c["id"] == contact_id]
    return found


def test_a_stranger_with_the_same_name_and_email_is_never_written(
    ivvy: Ivvy, upsert: Upsert
) -> None:
    _seed(ivvy, 900, "anna@example.com", "X0")
    (outcome,) = upsert([ROW])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "identity_conflict"
    assert "addOrUpdateContact" not in ivvy.actions()  # nothing sent
    assert _record(ivvy, 900)["externalId"] == "X0"
    assert len(ivvy.emulator.contacts()) == 1


def test_an_email_differing_but_for_letter_case_is_another_person(
    ivvy: Ivvy, upsert: Upsert
) -> None:
    # Whether updateIfExists ignores the email's case is undocumented (the emulator
    # does): Anna@ is another person than anna@.
    _seed(ivvy, 900, "Anna@example.com", None)
    (outcome,) = upsert([ROW])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "identity_conflict"
    assert _record(ivvy, 900)["externalId"] is None


def test_the_persons_own_contact_is_adopted_by_its_id(ivvy: Ivvy, upsert: Upsert) -> None:
    _seed(ivvy, 900, "anna@example.com", "X0")
    _seed(ivvy, 901, "anna@example.com", None)  # made in iVvy's UI, no external id
    (outcome,) = upsert([ROW])
    assert outcome.status is Status.UPDATED
    assert outcome.remote_id == "901"
    assert any(w.startswith("adopted_by_email") for w in outcome.warnings)
    assert _record(ivvy, 901)["externalId"] == "P0"
    assert _record(ivvy, 900)["externalId"] == "X0"


def test_look_ups_only_where_a_create_could_merge(ivvy: Ivvy, upsert: Upsert) -> None:
    (first,) = upsert([ROW])  # nobody has the name and email: created as before
    assert first.status is Status.WRITTEN
    assert ivvy.actions() == ["getContactList", "getContactList", "addOrUpdateContact"]
    ivvy.transport.requests.clear()
    (again,) = upsert([ROW])  # the external id is found: no second look-up
    assert again.status is Status.UPDATED
    assert ivvy.actions() == ["getContactList", "addOrUpdateContact"]
    ivvy.transport.requests.clear()
    upsert([{**ROW, "external_id": "P1"}], update_if_exists=False)  # no matching: none
    assert ivvy.actions() == ["getContactList", "addOrUpdateContact"]


NO_EXT = {"first_name": "Anna", "last_name": "Smith", "email": "Anna@example.com"}


def test_without_external_id_an_email_differing_but_for_case_is_never_written(
    ivvy: Ivvy, upsert: Upsert
) -> None:
    _seed(ivvy, 900, "anna@example.com", None)  # another Anna Smith
    (outcome,) = upsert([NO_EXT])
    assert outcome.status is Status.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "identity_conflict"
    assert "addOrUpdateContact" not in ivvy.actions()
    assert _record(ivvy, 900)["email"] == "anna@example.com"


def test_without_external_id_the_persons_own_contact_is_written_by_its_id(
    ivvy: Ivvy, upsert: Upsert
) -> None:
    _seed(ivvy, 900, "anna@example.com", None)  # another Anna Smith
    _seed(ivvy, 901, "Anna@example.com", "X1")  # this one: the same name and email
    (outcome,) = upsert([{**NO_EXT, "custom_fields": {"visits": 9}}])
    assert outcome.status is Status.UPDATED
    assert outcome.remote_id == "901"
    assert _record(ivvy, 900)["email"] == "anna@example.com"
    assert _record(ivvy, 901)["externalId"] == "X1"


def test_without_external_id_only_the_persons_own_is_created_over_as_before(
    ivvy: Ivvy, upsert: Upsert
) -> None:
    _seed(ivvy, 900, "Anna@example.com", None)
    (outcome,) = upsert([NO_EXT])
    assert outcome.status is Status.WRITTEN
    assert outcome.remote_id == "900"  # updateIfExists matched it
    assert ivvy.actions() == ["getContactList", "addOrUpdateContact"]


class _AnswersLost(EmulatorApp):
    """Requests whose action is ``action`` are applied and their answer lost; every
    other request is answered."""

    def __init__(self, emulator: Any, action: str) -> None:
        super().__init__(emulator)
        self.action = f"action={action}".encode()

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        response, fault = super()._answer(request)
        if self.action in request.url.raw_path:
            raise httpx.ReadError("answer lost after the request was applied", request=request)
        return response, fault


@pytest.mark.parametrize(
    ("action", "row"),
    [
        ("addOrUpdateContact", ROW),
        ("addContactsToSubscriptionGroup", {**ROW, "groups": {"add": ["vip"]}}),
    ],
    ids=["write", "group"],
)
def test_an_adoption_whose_answer_was_lost_still_says_it_adopted(
    action: str, row: dict[str, Any]
) -> None:
    """The person's own contact (no external id) is adopted next to another person's
    (X0), and an answer after the write by its id is lost: the write reached the
    adopted contact, so the failed row's outcome still names the adoption (never a
    contact changed that no outcome accounts for), and X0's contact is untouched."""
    ivvy = Ivvy()
    ivvy.app = _AnswersLost(ivvy.emulator, action)
    ivvy.transport = Recording(EmulatorTransport(ivvy.app))
    _seed(ivvy, 900, "anna@example.com", "X0")
    _seed(ivvy, 901, "anna@example.com", None)
    config = ivvy_config()
    config["tenants"]["i"]["http"] = {**config["tenants"]["i"]["http"], "retry_for": 0.0}
    (outcome,) = ivvy.upsert([row], config=config)
    assert outcome.status is Status.FAILED, outcome
    assert outcome.error is not None
    assert outcome.error.code == "outcome_unknown", outcome
    assert _record(ivvy, 901)["externalId"] == "P0"  # the write was applied
    assert any(w.startswith("adopted_by_email") for w in outcome.warnings), outcome
    assert _record(ivvy, 900)["externalId"] == "X0"
