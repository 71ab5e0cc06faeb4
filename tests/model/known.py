"""Invariants the current code breaks, per provider, each with the issue's bullet.

Each is checked alone by ``test_known_break`` (an expected failure until the fix lands)
and left out of the other tests; once fixed, remove its line so every test checks it.
The breaks in :data:`COLLIDING` show only among people who share what the platform
matches on (an email, a first name, a phone): the main tests of a provider with such a
break draw people who do not, and check those invariants there; a provider with none
is tested among colliding people."""

from __future__ import annotations

WHY1 = "issue 23, why 1: replaying --failed writes older rows over newer ones"
WHY5 = "issue 23, why 5 / rule 7: two people folded into one record"
WHY6 = "issue 23, why 6: a repeat never reaches 0 requests when a person has several rows"
WHY7 = "issue 23, why 7: outcomes that are not what happened"

# fmt: off
COLLIDING: dict[tuple[str, str], str] = {
}
KNOWN: dict[tuple[str, str], str] = {
    **COLLIDING,
}
# fmt: on


def checked(provider: str, invariants: frozenset[str]) -> frozenset[str]:
    """The invariants a test of ``provider`` among people who do not collide asserts:
    all but its known breaks that show without collisions."""
    return invariants - {
        name for (p, name) in KNOWN if p == provider and (p, name) not in COLLIDING
    }
