"""Declared types of custom fields: text from a CSV (or a JSON string) made the value
the platform field holds, or refused naming the field.

A tenant declares ``loyalty = { id = 79814, type = "int" }``; every contact's
``custom_fields.loyalty`` is then converted before any provider sees it, so the same
input gives the same typed value on every platform, and a value that is not of the
type (``"ten"``, ``"not-a-date"``) is rejected instead of being stored as text.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Callable, Mapping

import attrs

from ._errors import ContactError
from ._model import Contact, CustomValue


class FieldType(enum.StrEnum):
    STR = "str"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"


@attrs.frozen
class CustomFieldSpec:
    """A ``custom_fields`` entry written as a table: the platform id and its type."""

    id: str | int
    type: FieldType | None = None


_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class _NotOfType(ValueError):
    pass


def _to_str(value: CustomValue) -> CustomValue:
    if isinstance(value, bool):
        raise _NotOfType("must be text, not true/false")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _to_int(value: CustomValue) -> CustomValue:
    if isinstance(value, bool):
        raise _NotOfType("must be an integer, not true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    raise _NotOfType("must be an integer (like 10 or -3)")


def _to_float(value: CustomValue) -> CustomValue:
    if isinstance(value, bool):
        raise _NotOfType("must be a number, not true/false")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number
    raise _NotOfType("must be a finite number (like 2.5)")


def _to_bool(value: CustomValue) -> CustomValue:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise _NotOfType("must be true or false (true/false, 1/0, yes/no)")


def _to_date(value: CustomValue) -> CustomValue:
    if isinstance(value, dt.datetime):
        raise _NotOfType("must be a date without a time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _NotOfType("must be an ISO 8601 date (YYYY-MM-DD)")


def _to_datetime(value: CustomValue) -> CustomValue:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _NotOfType("must be an ISO 8601 date and time (YYYY-MM-DDTHH:MM:SS, offset optional)")


_CONVERTERS: dict[FieldType, Callable[[CustomValue], CustomValue]] = {
    FieldType.STR: _to_str,
    FieldType.INT: _to_int,
    FieldType.FLOAT: _to_float,
    FieldType.BOOL: _to_bool,
    FieldType.DATE: _to_date,
    FieldType.DATETIME: _to_datetime,
}


def convert(name: str, value: CustomValue, type_: FieldType) -> CustomValue:
    """``value`` as ``type_``, or :class:`ContactError` naming ``custom_fields.NAME``.
    The refused value is not repeated in the message (it may be personal data)."""
    try:
        return _CONVERTERS[type_](value)
    except _NotOfType as exc:
        raise ContactError(f"custom_fields.{name}", f"{exc} (declared type {type_})") from None


def with_field_types(contact: Contact, types: Mapping[str, FieldType]) -> Contact:
    """``contact`` with each custom field of a declared type converted to it."""
    if not types or not contact.custom_fields:
        return contact
    converted = {
        name: convert(name, value, types[name]) if name in types else value
        for name, value in contact.custom_fields.items()
    }
    if converted == dict(contact.custom_fields) and all(
        type(converted[n]) is type(v) for n, v in contact.custom_fields.items()
    ):
        return contact
    return attrs.evolve(contact, custom_fields=converted)
