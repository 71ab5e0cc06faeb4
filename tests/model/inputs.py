"""Hypothesis strategies for the model suite: people whose identities repeat in the
forms platforms match on, rows that present them, accounts seeded with contacts the
library did not write. Generated from classes of variation, not from lists of cases."""

from __future__ import annotations

import unicodedata
from typing import Any

from hypothesis import strategies as st

from tests.model.model import nfd

FIRST = ("Anna", "John", "Zoë")
LOCAL = ("anna", "john", "strasse")
LAST = ("Smith", "Doe", "Doe Jr")
PHONES = ("+447911100001", "+447911100002", "+447911100003")


@st.composite
def email_local(draw: st.DrawFn) -> str:
    """A local part, in one of the forms two addresses differ by that a platform may
    or may not tell apart: letter case, ``ß`` for ``ss``."""
    local = draw(st.sampled_from(LOCAL))
    form = draw(st.sampled_from(("plain", "capitalised", "eszett")))
    if form == "capitalised":
        return local.capitalize()
    if form == "eszett" and "ss" in local:
        return local.replace("ss", "ß")
    return local


@st.composite
def first_name(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(FIRST))
    return nfd(name) if draw(st.booleans()) else name  # NFC or NFD (differs for Zoë)


@st.composite
def people(draw: st.DrawFn, provider: str, collide: bool = True) -> list[dict[str, Any]]:
    """1 to 4 people; some have an external id, possibly one differing from another's
    only by letter case. With ``collide`` some share emails (or differ only by a
    letter's case, ß for ss), first names or phones, so the platform's own matching
    could land two of them on one record; without, their emails and phones differ."""
    count = draw(st.integers(1, 4))
    out: list[dict[str, Any]] = []
    if provider != "gleantap" and count >= 2 and draw(st.integers(0, 2)) == 0:
        # Two people the platform keeps apart (it lower-cases an address, and ``ß``
        # lowered is still ``ß``) whose addresses casefold to one: same name, no
        # external id, ``strasse`` and ``straße``. Never one record, never each
        # other's data.
        name = {"first_name": draw(first_name()), "last_name": draw(st.sampled_from(LAST)),
                "external_id": None, "phone": None}  # fmt: skip
        out += [{**name, "email": f"{local}@example.com"} for local in ("strasse9", "straße9")]
    for n in range(len(out), count):
        ext: str | None = None
        kind = draw(st.sampled_from(("ext", "ext", "case-twin", "none")))
        if kind == "ext" or (kind == "case-twin" and not any(p["external_id"] for p in out)):
            ext = f"P{n}"
        elif kind == "case-twin":
            other = next(p["external_id"] for p in out if p["external_id"])
            ext = other.swapcase()
        local = draw(email_local()) + ("" if collide else str(n))
        if provider == "gleantap":
            local = local.replace("ß", "ss")  # Gleantap takes ASCII addresses only
        phone = draw(
            st.one_of(
                st.none(),
                st.sampled_from(PHONES) if collide else st.just(PHONES[n % 3] if n < 3 else None),
            )
        )
        out.append({"external_id": ext, "first_name": draw(first_name()),
                    "last_name": draw(st.sampled_from(LAST)), "email": f"{local}@example.com",
                    "phone": phone})  # fmt: skip
    return out


def _ext_variant(ext: str, form: int) -> str:
    return (ext, f" {ext}", f"{ext}  ")[form]


def _phone_variant(phone: str, form: int) -> str:
    national = "0" + phone[3:]
    return (phone, f"{national[:5]} {national[5:]}", f"+44 {phone[3:7]} {phone[7:]}")[form]


@st.composite
def rows(draw: st.DrawFn, persons: list[dict[str, Any]], max_rows: int = 8) -> list[dict[str, Any]]:
    """Rows presenting the people in input order (a person may have several): the same
    external id with whitespace, the domain's letter case, another phone format, the
    phone left out, a new email (people with an external id)."""
    picks = draw(st.lists(st.integers(0, len(persons) - 1), min_size=1, max_size=max_rows))
    out: list[dict[str, Any]] = []
    for pick in picks:
        person = persons[pick]
        # One person's rows spell them in the forms a platform matches alike: the first
        # name composed (NFC) or decomposed (NFD), the address's letter case.
        first = person["first_name"]
        first = nfd(first) if draw(st.booleans()) else unicodedata.normalize("NFC", first)
        row: dict[str, Any] = {"first_name": first, "last_name": person["last_name"]}
        if person["external_id"]:
            row["external_id"] = _ext_variant(person["external_id"], draw(st.integers(0, 2)))
        local, _, domain = person["email"].partition("@")
        if person["external_id"] and draw(st.integers(0, 4)) == 0:
            local = f"{local}.new"  # the person changes their email
        # Only spellings that differ by letter case alone ("ß".upper() is "SS": another
        # address, another person, not a form of this one).
        forms = (local, local.lower(), local.capitalize(), local.upper())
        local = draw(st.sampled_from([f for f in forms if f.lower() == local.lower()]))
        if draw(st.booleans()):
            domain = domain.upper()
        row["email"] = f"{local}@{domain}"
        if person["phone"] and draw(st.integers(0, 3)):  # sometimes a partial row
            row["phone"] = _phone_variant(person["phone"], draw(st.integers(0, 2)))
        out.append(row)
    return out


@st.composite
def seeded(
    draw: st.DrawFn, persons: list[dict[str, Any]], provider: str, collide: bool = True
) -> list[dict[str, Any]]:
    """0 to 3 contacts already in the account, made outside the library: a stranger
    sharing an input person's email and first name under another external id, the same
    without any external id, or someone unrelated."""
    out: list[dict[str, Any]] = []
    for n in range(draw(st.integers(0, 3))):
        like = draw(st.sampled_from(persons))
        kinds = ("stranger", "no-ext", "unrelated") if collide else ("unrelated",)
        kind = draw(st.sampled_from(kinds))
        rec = {"first_name": like["first_name"], "last_name": like["last_name"],
               "email": like["email"], "phone": like["phone"], "token": f"S{n}",
               "external_id": f"X{n}"}  # fmt: skip
        if kind == "no-ext":
            rec["external_id"] = None
        elif kind == "unrelated":
            rec |= {"first_name": "Olga", "email": f"olga{n}@example.org", "phone": None}
        if provider == "yespo" and rec["phone"]:
            rec["phone"] = None
        out.append(rec)
    return out
