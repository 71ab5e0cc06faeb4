"""Invariants the current code breaks, per provider, each with the issue's bullet.

Each is checked alone by ``test_known_break`` (an expected failure until the fix lands)
and left out of the other tests; once fixed, remove its line so every test checks it."""

from __future__ import annotations

KNOWN: dict[tuple[str, str], str] = {
    (
        "gleantap",
        "untouched",
    ): "issue 23, why 5: Gleantap merges strangers (an unknown user_id falls back to email + first name)",
    (
        "gleantap",
        "newest",
    ): "issue 23, why 5: Gleantap merges strangers (another person's row took the record)",
    ("gleantap", "status"): "issue 23, why 7: Gleantap reports brand-new contacts updated",
    (
        "gleantap",
        "repeat_zero",
    ): "issue 23, why 6: a repeat never reaches 0 requests when a person has several rows",
    (
        "ivvy",
        "untouched",
    ): "issue 23, why 5 / rule 7: iVvy merges a person into a stranger with the same name and email",
    (
        "ivvy",
        "status_seeded",
    ): "issue 23, why 7: iVvy update_if_exists reports created for contacts merged into existing ones",
    (
        "ivvy",
        "repeat_zero",
    ): "issue 23, why 6: a repeat never reaches 0 requests when a person has several rows",
    (
        "yespo",
        "repeat_zero",
    ): "issue 23, why 6: a repeat never reaches 0 requests when a person has several rows",
    ("yespo", "status"): "issue 23, why 7: Yespo reports brand-new contacts updated",
    ("yespo", "newest"): "issue 23, why 5 / rule 7: another person's row took a person's record",
    (
        "yespo",
        "one_record",
    ): "issue 23, why 5 / rule 7: a row without external id lands on another person's record",
}


def checked(provider: str, invariants: frozenset[str]) -> frozenset[str]:
    """The invariants a test of ``provider`` asserts: all but its known breaks."""
    return invariants - {name for (p, name) in KNOWN if p == provider}
