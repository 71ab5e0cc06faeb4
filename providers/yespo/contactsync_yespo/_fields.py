"""Custom field values: Yespo wants every value as a string, in its documented formats."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any

import attrs

from contactsync.provider import ContactError, CustomValue

from ._lenient import as_bool, as_int, one_or_many

INT32 = (-(2**31), 2**31 - 1)
TEXT_LIMITS = {"TEXTFIELD": 1000, "TEXTAREA": 5000}


@attrs.frozen
class FieldDefinition:
    id: int
    name: str
    type: str
    possible_values: tuple[str, ...] = ()
    required: bool = False
    readonly: bool = False


def serialize(name: str, value: CustomValue) -> str:
    """The string Yespo stores for ``value``.

    Dates are ``YYYY-MM-DD`` and date-times ``YYYY-MM-DDTHH:MM``, as Yespo documents.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            # Yespo reads date-times without a zone, in a zone its docs disagree on
            # (the contact's or the account's): refuse rather than shift silently.
            raise ContactError(
                f"custom_fields.{name}",
                "Yespo stores date-times without a time zone; pass a naive datetime",
            )
        if value.second or value.microsecond:
            raise ContactError(
                f"custom_fields.{name}",
                "Yespo stores date-times to the minute; seconds would be lost",
            )
        return value.strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return format(decimal.Decimal(repr(value)), "f")
    return str(value)


def check(name: str, text: str, definition: FieldDefinition) -> None:
    """Raise if ``text`` would be refused by a field of ``definition``'s type."""
    field = f"custom_fields.{name}"
    kind = definition.type
    if definition.readonly:
        raise ContactError(field, f"Yespo field {definition.id} is read-only")
    if kind == "NUMBER":
        number = as_int(text)
        if number is None or not INT32[0] <= number <= INT32[1]:
            raise ContactError(field, "Yespo NUMBER fields hold 32-bit whole numbers")
    elif kind == "DECIMAL":
        try:
            decimal.Decimal(text)
        except decimal.InvalidOperation:
            raise ContactError(field, "Yespo DECIMAL fields hold numbers") from None
    elif kind == "DATE":
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            raise ContactError(field, "Yespo DATE fields hold dates (YYYY-MM-DD)") from None
    elif kind == "DATETIME":
        try:
            dt.datetime.strptime(text, "%Y-%m-%dT%H:%M")
        except ValueError:
            raise ContactError(
                field, "Yespo DATETIME fields hold date-times (YYYY-MM-DDTHH:MM)"
            ) from None
    elif kind in TEXT_LIMITS and len(text) > TEXT_LIMITS[kind]:
        raise ContactError(
            field, f"Yespo {kind} fields hold at most {TEXT_LIMITS[kind]} characters"
        )
    elif (
        kind == "COMBOBOX" and definition.possible_values and text not in definition.possible_values
    ):
        allowed = ", ".join(definition.possible_values)
        raise ContactError(field, f"not one of the field's values ({allowed})")


def parse_address_books(body: Any) -> dict[int, FieldDefinition]:
    """Field definitions from ``GET /api/v1/addressbooks`` (schema or FAQ-sample shapes)."""
    definitions: dict[int, FieldDefinition] = {}
    root = body.get("addressBook") if isinstance(body, Mapping) else None
    for book in one_or_many(root):
        for group in one_or_many(book.get("fieldGroups") if isinstance(book, Mapping) else None):
            for info in one_or_many(group.get("fields") if isinstance(group, Mapping) else None):
                if not isinstance(info, Mapping):
                    continue
                field_id = as_int(info.get("id"))
                description = info.get("description") or {}
                if field_id is None or not isinstance(description, Mapping):
                    continue
                allowed = description.get("allowedValues") or {}
                possible = allowed.get("possibleValues") if isinstance(allowed, Mapping) else None
                definitions[field_id] = FieldDefinition(
                    id=field_id,
                    name=str(info.get("name") or ""),
                    type=str(description.get("type") or "TEXTFIELD").upper(),
                    possible_values=tuple(str(v) for v in one_or_many(possible)),
                    required=as_bool(description.get("required")),
                    readonly=as_bool(description.get("readonly")),
                )
    return definitions
