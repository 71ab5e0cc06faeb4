"""What a tenant's platform account holds: its custom fields and groups, for writing
the ``custom_fields`` and ``groups`` mapping, and a cheap call that proves the
credentials work.

Providers return these from read-only flows (:meth:`Provider.list_fields`,
:meth:`Provider.list_groups`, :meth:`Provider.check_credentials`); the engine runs
them. A provider whose platform documents no listing returns ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from typing import TypeAlias

import attrs

from ._field_types import FieldType
from ._provider import Response, Step


@attrs.frozen
class RemoteField:
    """One custom field of the platform account."""

    id: str | int
    """What goes in the ``custom_fields`` mapping."""
    name: str
    """The platform's display name."""
    platform_type: str
    """The platform's own type name (``NUMBER``, ``date``...)."""
    type: FieldType | None = None
    """The declared type that converts values for this field, when one fits."""


@attrs.frozen
class RemoteGroup:
    """One group, list or segment of the platform account."""

    ref: str | int
    """What goes in the ``groups`` mapping (an id or a name, as the provider takes it)."""
    name: str
    kind: str = ""
    """The platform's word for it (``segment``, ``subscription group``)."""


ReadFlow: TypeAlias = Generator[Step, Response | None, object]
FieldsFlow: TypeAlias = Generator[Step, Response | None, Sequence[RemoteField]]
GroupsFlow: TypeAlias = Generator[Step, Response | None, Sequence[RemoteGroup]]


class NotListed(Exception):
    """The platform documents no way to list this (the message says what to do)."""


_NOT_WORD = re.compile(r"[^0-9a-z]+")


def mapping_key(name: str, taken: set[str]) -> str:
    """A TOML bare key for a display name: ``"Loyalty points"`` -> ``loyalty_points``,
    made unique among ``taken`` (which it joins)."""
    base = _NOT_WORD.sub("_", name.lower()).strip("_") or "field"
    if base[0].isdigit():
        base = f"f_{base}"
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    taken.add(key)
    return key


def _toml_value(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _comment(text: str) -> str:
    return " ".join(text.split())


def fields_snippet(tenant: str, fields: Sequence[RemoteField]) -> str:
    """A ready ``[tenants.T.custom_fields]`` table for ``fields``."""
    taken: set[str] = set()
    lines = [f"[tenants.{tenant}.custom_fields]"]
    for field in fields:
        key = mapping_key(field.name, taken)
        if field.type is None:
            value = _toml_value(field.id)
        else:
            value = f'{{ id = {_toml_value(field.id)}, type = "{field.type}" }}'
        lines.append(f"{key} = {value}  # {_comment(field.name)} ({field.platform_type})")
    return "\n".join(lines) + "\n"


def groups_snippet(tenant: str, groups: Sequence[RemoteGroup]) -> str:
    """A ready ``[tenants.T.groups]`` table for ``groups``."""
    taken: set[str] = set()
    lines = [f"[tenants.{tenant}.groups]"]
    for group in groups:
        key = mapping_key(group.name, taken)
        kind = f" ({group.kind})" if group.kind else ""
        lines.append(f"{key} = {_toml_value(group.ref)}  # {_comment(group.name)}{kind}")
    return "\n".join(lines) + "\n"
