"""Contacts as plain records: the JSON-lines and CSV input forms, and back.

The record keys are the model's field names. ``groups`` is a list (replace) or
``{"add": [...], "remove": [...]}``; ``tags`` is a list (add) or the same object.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

import attrs

from ._errors import ContactError
from ._model import Address, Contact, MembershipChange

_FIELDS = frozenset(a.name for a in attrs.fields(Contact))


def contact_from_record(record: object) -> Contact:
    """Build a contact from one JSON object. Raises :class:`ContactError` only."""
    if not isinstance(record, Mapping):
        raise ContactError("<record>", "must be a JSON object")
    for key in record:
        if key not in _FIELDS:
            raise ContactError(str(key) or "<blank key>", "unknown field")
    for field in ("groups", "tags"):
        value = record.get(field)
        if value is not None and not isinstance(value, list | Mapping):
            raise ContactError(
                field, 'must be a list or an object with "add" / "remove" / "replace"'
            )
    try:
        return Contact(**record)
    except TypeError as exc:  # pragma: no cover - guarded by the key check above
        raise ContactError("<record>", str(exc)) from None


def _plain(value: object) -> object:
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def contact_to_record(contact: Contact) -> dict[str, Any]:
    """The JSON-ready record that :func:`contact_from_record` turns back into ``contact``."""
    record: dict[str, Any] = {}
    for field in attrs.fields(Contact):
        value = getattr(contact, field.name)
        if isinstance(value, MembershipChange):
            if not value:
                continue
            change = {k: list(v) for k, v in (("add", value.add), ("remove", value.remove)) if v}
            if value.replace is not None:
                change["replace"] = list(value.replace)
            record[field.name] = change
        elif isinstance(value, Address):
            record[field.name] = {k: v for k, v in attrs.asdict(value).items() if v is not None}
        elif isinstance(value, Mapping):
            if value:
                record[field.name] = {
                    k: _plain(v) if not isinstance(v, Mapping) else dict(v)
                    for k, v in value.items()
                }
        elif value is not None:
            record[field.name] = _plain(value)
    return record


@attrs.frozen
class InputLine:
    """One input record: its position, and the parsed value or why it could not be read."""

    index: int
    record: object
    error: ContactError | None = None


def read_jsonl(stream: TextIO) -> Iterator[InputLine]:
    index = 0
    for line in stream:
        if not line.strip():
            continue
        try:
            yield InputLine(index, json.loads(line))
        except json.JSONDecodeError as exc:
            yield InputLine(index, line.rstrip("\n"), ContactError("<line>", f"not JSON: {exc}"))
        index += 1


def _set_dotted(target: dict[str, Any], dotted: str, value: str) -> None:
    head, _, rest = dotted.partition(".")
    if not rest:
        target[head] = value
        return
    child = target.setdefault(head, {})
    if isinstance(child, dict):
        _set_dotted(child, rest, value)


_CSV_LISTS = {"groups", "tags"}


def read_csv(stream: TextIO) -> Iterator[InputLine]:
    """Rows with a header; dotted columns (``address.city``) nest; empty cells are absent.

    ``groups`` and ``tags`` cells hold names separated by ``|`` (groups replace, tags add);
    ``groups.add`` / ``groups.remove`` columns give the other modes.
    """
    reader = csv.DictReader(stream)
    for index, row in enumerate(reader):
        record: dict[str, Any] = {}
        for column, cell in row.items():
            if column is None or cell is None or cell == "":
                continue
            head = column.split(".", 1)[0]
            is_list = head in _CSV_LISTS
            value: Any = [n for n in cell.split("|") if n] if is_list else cell
            if "." in column:
                _set_dotted(record, column, value)
            else:
                record[column] = value
        yield InputLine(index, record)


def read_input(stream: TextIO, kind: str) -> Iterator[InputLine]:
    if kind == "csv":
        return read_csv(stream)
    return read_jsonl(stream)


def dump_jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True))
        out.write("\n")
    return out.getvalue()
