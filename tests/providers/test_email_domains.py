"""A punycode email domain goes out as ASCII on every provider, never turned into Unicode."""

from __future__ import annotations

import json
from typing import Any

import email_validator
import pytest
from contactsync_gleantap._mapping import ascii_email as gleantap_ascii_email

from contactsync import ContactError, Status
from contactsync._helpers import idna_email
from tests.providers.ivvy.conftest import Ivvy
from tests.providers.yespo.conftest import Yespo, channel

CASES = [
    ("ann@xn--bcher-kva.de", "ann@xn--bcher-kva.de"),  # punycode: sent as given
    ("ann@bücher.de", "ann@xn--bcher-kva.de"),  # Unicode: IDNA-encoded
    ("Ann@Straße.example", "Ann@xn--strae-oqa.example"),  # IDNA 2008 keeps ß
]


@pytest.mark.parametrize("mode", ["realtime", "bulk"])
@pytest.mark.parametrize(("given", "sent"), CASES)
def test_yespo_sends_the_ascii_domain(mode: str, given: str, sent: str) -> None:
    yespo = Yespo()
    person = {"external_id": "e1", "first_name": "Ann", "email": given}
    (outcome,) = yespo.upsert([person], mode=mode)
    assert outcome.status is Status.WRITTEN
    (write,) = [r for r in yespo.writes() if r.method == "POST"]
    body = json.loads(write.content)
    contact = body["contacts"][0] if mode == "bulk" else body
    assert contact["channels"] == [{"type": "email", "value": sent}]
    assert channel(yespo.by_external("e1"), "email") == sent
    # Either spelling again lands on the same contact.
    yespo.upsert([{**person, "external_id": None, "email": sent}], mode=mode)
    assert len(yespo.stored()) == 1


@pytest.mark.parametrize(("given", "sent"), CASES)
def test_ivvy_sends_the_ascii_domain(given: str, sent: str) -> None:
    ivvy = Ivvy()
    (outcome,) = ivvy.upsert([{"external_id": "e1", "first_name": "Ann", "last_name": "Lee",
                               "email": given}])  # fmt: skip
    assert outcome.status is Status.WRITTEN
    (write,) = [
        json.loads(r.content)
        for r in ivvy.transport.requests
        if r.url.params["action"] == "addOrUpdateContact"
    ]
    assert write["email"] == sent
    assert ivvy.by_external("e1")["email"] == sent


ADDRESSES = [
    "ann@example.com",
    "Ann.Lee+news@Sub.Example.org",  # an upper-case domain (not normalized) is lowered
    "ann@xn--bcher-kva.de",
    "ann@XN--BCHER-KVA.de",
    "ann@bücher.de",
    "Ann@Straße.example",
    "ännä@example.com",  # a Unicode local part
    "o'brien@a-b.example.co.uk",
]


def _validated(address: str) -> Any:
    return email_validator.validate_email(address, check_deliverability=False, allow_smtputf8=True)


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_ascii_shortcut_answers_what_the_validator_does(address: str) -> None:
    """An address that is already ASCII skips the second validation; the answer must be
    the validator's, for the address as given and as the contact holds it."""
    for form in (address, _validated(address).normalized):
        checked = _validated(form)
        assert idna_email(form) == f"{checked.local_part}@{checked.ascii_domain}"
        if checked.ascii_email is None:
            with pytest.raises(ContactError):
                gleantap_ascii_email(form)
        else:
            assert gleantap_ascii_email(form) == checked.ascii_email
