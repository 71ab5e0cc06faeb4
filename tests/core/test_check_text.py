"""``check_text``: the printable-ASCII shortcut refuses everything the full checks do."""

from __future__ import annotations

import unicodedata

import pytest

from contactsync import Contact, ContactError
from contactsync._normalize import check_text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Ann\x00", "control characters"),
        ("A\tnn", "control characters"),
        ("Ann\x7f", "control characters"),
        ("Ann\x1b[31m", "control characters"),
        ("Ann\ud800", "lone surrogate"),
        ("x" * 41, "longer than 40"),
        ("é" * 41, "longer than 40"),
    ],
)
def test_refused(value: str, problem: str) -> None:
    with pytest.raises(ContactError, match=problem) as raised:
        check_text("first_name", value, max_length=40)
    assert raised.value.field == "first_name"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("  Ann Lee ", "Ann Lee"), ("x" * 40, "x" * 40), ("Zoë\u00a0", "Zoë"), ("   ", None)],
)
def test_accepted(value: str, expected: str | None) -> None:
    assert check_text("first_name", value, max_length=40) == expected


def test_text_is_composed_never_compatibility_folded() -> None:
    decomposed = unicodedata.normalize("NFD", "Zoë Ångström")
    contact = Contact(first_name=decomposed, last_name=decomposed, external_id=decomposed)
    assert {contact.first_name, contact.last_name, contact.external_id} == {"Zoë Ångström"}
    # NFKC would make the ligature "fi" and the full-width A plain letters: not done.
    kept = "\ufb01ona \uff21"
    assert Contact(first_name=kept).first_name == kept
