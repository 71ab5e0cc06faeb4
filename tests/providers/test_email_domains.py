"""A punycode email domain goes out as ASCII on every provider, never turned into Unicode."""

from __future__ import annotations

import json

import pytest

from contactsync import Status
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
    assert outcome.status is Status.UPDATED
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
    assert outcome.status is Status.CREATED
    (write,) = [
        json.loads(r.content)
        for r in ivvy.transport.requests
        if r.url.params["action"] == "addOrUpdateContact"
    ]
    assert write["email"] == sent
    assert ivvy.by_external("e1")["email"] == sent
