"""A CSV header as a spreadsheet writes it, matched to the model's field names.

``Email``, ``First Name`` and `` first_name `` all name ``first_name``-style fields:
case, surrounding spaces and inner runs of spaces or hyphens do not matter. The names
under ``custom_fields.`` and the keys under ``provider_options.PROVIDER.`` are the
user's own and are kept as written (only trimmed). A column naming nothing the model
has is refused once for the whole file, with the valid names listed.
"""

from __future__ import annotations

import difflib
import re

import attrs

from ._model import CONTACT_FIELDS, Address, MembershipChange

_SEPARATORS = re.compile(r"[\s\-]+")

_NESTED: dict[str, tuple[str, ...]] = {
    "address": tuple(a.name for a in attrs.fields(Address)),
    "groups": tuple(a.name for a in attrs.fields(MembershipChange)),
    "tags": tuple(a.name for a in attrs.fields(MembershipChange)),
}
_FREE = {"custom_fields": "NAME", "provider_options": "PROVIDER.KEY"}
_NOT_A_COLUMN = {"provider_options"}  # cells hold text: only its dotted form fits one


class HeaderProblem(ValueError):
    """Why the header cannot be used; the message names the column."""


def _key(text: str) -> str:
    return _SEPARATORS.sub("_", text.strip()).lower()


def valid_columns() -> list[str]:
    """Every column a header may hold, for the error message."""
    names: list[str] = [f for f in CONTACT_FIELDS if f not in _NOT_A_COLUMN]
    for parent, children in _NESTED.items():
        names.extend(f"{parent}.{child}" for child in children)
    names.extend(f"{parent}.{rest}" for parent, rest in _FREE.items())
    return names


def _canonical(column: str) -> str | None:
    """The model's name for ``column``, or ``None`` if it names nothing."""
    head, dot, rest = column.partition(".")
    field = _key(head)
    if field not in CONTACT_FIELDS:
        return None
    if not dot:
        return None if field in _NOT_A_COLUMN else field
    if field in _NESTED:
        child = _key(rest)
        return f"{field}.{child}" if child in _NESTED[field] else None
    if field == "custom_fields":
        name = rest.strip()
        return f"{field}.{name}" if name else None
    if field == "provider_options":
        provider, dot, option = rest.partition(".")
        provider, option = _key(provider), option.strip()
        return f"{field}.{provider}.{option}" if provider and dot and option else None
    return None


def _refuse(number: int, column: str) -> HeaderProblem:
    valid = valid_columns()
    close = difflib.get_close_matches(_key(column), valid, n=1, cutoff=0.7)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return HeaderProblem(
        f"CSV header column {number} {column!r} is not a contact field{hint}; "
        f"valid columns (any case, spaces for underscores): {', '.join(valid)}"
    )


def match_header(header: list[str]) -> list[str | None]:
    """The model's name for each column (``None``: a column with no name, to be left
    empty), or :class:`HeaderProblem` for the first column that names nothing the model
    has or names the same field as an earlier one."""
    matched: list[str | None] = []
    seen: dict[str, int] = {}
    for number, column in enumerate(header, 1):
        if not column.strip():
            matched.append(None)
            continue
        name = _canonical(column)
        if name is None:
            raise _refuse(number, column)
        if name in seen:
            first = seen[name]
            raise HeaderProblem(
                f"CSV header columns {first} {header[first - 1]!r} and {number} {column!r} "
                f"both name {name}"
            )
        seen[name] = number
        matched.append(name)
    return matched


_DELIMITERS = (",", ";", "\t")


def sniff_delimiter(first_line: str) -> str:
    """The delimiter a header line uses: whichever of ``,`` ``;`` and tab occurs most
    often outside quotes (``,`` on a tie or when none does: a one-column file)."""
    counts = dict.fromkeys(_DELIMITERS, 0)
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_DELIMITERS, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","
