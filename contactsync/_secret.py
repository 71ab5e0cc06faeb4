"""A string that never shows itself in a repr, a log line or an exception."""

from __future__ import annotations

from typing import Final

_MASK: Final = "***"


class Secret:
    """Wraps a credential. Only :meth:`reveal` gives the value back."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret must be a string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, format_spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the value somewhere we cannot see; refuse.
        raise TypeError("secrets cannot be pickled")


MASK: Final = _MASK
