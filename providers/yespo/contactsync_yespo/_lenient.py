"""Reading Yespo's responses the way they really arrive.

Yespo's XML-era backend turns a one-element list into a bare object, and some of
its samples carry numbers and booleans as strings; every reader goes through here.
"""

from __future__ import annotations

from typing import Any


def one_or_many(value: Any) -> list[Any]:
    """``[]`` for nothing, the list itself, or a bare object wrapped in a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)
