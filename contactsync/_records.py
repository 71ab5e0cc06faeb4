"""Contacts as plain records: the JSON-lines and CSV input forms, and back.

The record keys are the model's field names. ``groups`` is a list (replace) or
``{"add": [...], "remove": [...]}``; ``tags`` is a list (add) or the same object.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import attrs

from ._csv_header import HeaderProblem, match_header, sniff_delimiter
from ._errors import ContactError, ContactsyncError, UnknownField
from ._model import CONTACT_FIELDS, Address, Contact, MembershipChange, contact_from_fields

_FIELDS = frozenset(a.name for a in attrs.fields(Contact))

ANNOTATION_KEY = "_contactsync"
"""A record key the reader ignores: ``--failed`` puts each line's input index and
error there, so the file can be upserted again as it is."""


def contact_from_record(record: object) -> Contact:
    """Build a contact from one JSON object. Raises :class:`ContactError` only."""
    if not isinstance(record, Mapping):
        raise ContactError("<record>", "must be a JSON object")
    if ANNOTATION_KEY in record:
        record = {k: v for k, v in record.items() if k != ANNOTATION_KEY}
    for key in record:
        if key not in _FIELDS:
            raise UnknownField(str(key), CONTACT_FIELDS)
    for field in ("groups", "tags"):
        value = record.get(field)
        if value is not None and not isinstance(value, list | Mapping):
            raise ContactError(
                field, 'must be a list or an object with "add" / "remove" / "replace"'
            )
    return contact_from_fields(record)


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


class UnreadableInput(ContactError):
    """An input line (or CSV row) that could not be read as a record.

    ``code`` is the outcome error code it stands for; ``line`` the 1-based physical
    line of the input where it starts.
    """

    code = "unreadable_input"

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        super().__init__("<line>", f"line {line}: {problem}")


class InputError(ContactsyncError):
    """The input as a whole cannot be read (e.g. a CSV header); nothing was sent."""


MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a JSON line."""
MAX_INT_DIGITS = 4300
"""Longest integer accepted (Python's own limit for converting text to int)."""


class _Refused(ValueError):
    pass


def _parse_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer has {digits} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("a number is out of range")
    return value


def _parse_constant(name: str) -> object:
    raise _Refused(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _check_value(value: object, text: str) -> str | None:
    """Why a parsed line cannot be used: too deep, or a lone surrogate in a string."""
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if not (deep or surrogates):
        return None
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str) and _has_surrogate(item):
            return "a string holds a lone surrogate (\\ud800-\\udfff), which is not text"
    return None


def _decode_line(raw: bytes | str) -> tuple[str, str | None]:
    """The line as text (undecodable bytes kept as surrogate escapes) and any problem."""
    if isinstance(raw, str):
        return raw, ("holds characters that are not text" if _has_surrogate(raw) else None)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = raw.decode("utf-8", "surrogateescape")
        return text, f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"


def parse_json_line(text: str, line: int) -> tuple[object, UnreadableInput | None]:
    """One JSON line parsed, or why not. Never raises."""
    try:
        value = _DECODER.decode(text)
    except _Refused as exc:
        return text, UnreadableInput(line, str(exc))
    except json.JSONDecodeError as exc:
        return text, UnreadableInput(line, f"not JSON: {exc.msg} at column {exc.colno}")
    except RecursionError:
        return text, UnreadableInput(line, f"nested deeper than {MAX_DEPTH} levels")
    except ValueError as exc:  # pragma: no cover - a parser limit not foreseen above
        return text, UnreadableInput(line, f"not readable: {exc}")
    problem = _check_value(value, text)
    if problem is not None:
        return text, UnreadableInput(line, problem)
    return value, None


def read_jsonl(stream: Iterable[bytes | str]) -> Iterator[InputLine]:
    """One :class:`InputLine` per non-blank line; never raises on what the input holds.

    Prefer a binary stream: every line is then decoded on its own, so a line that is
    not UTF-8 is that line's error (a text stream that meets such bytes cannot go on:
    that is reported as one last unreadable line). Lines are split on ``\\n`` only;
    lines of ASCII whitespace are skipped (and not counted in ``index``).
    """
    index = 0
    number = 0
    iterator = iter(stream)
    while True:
        try:
            line = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            why = f"not UTF-8 ({exc.reason}); the rest of this text stream is unreadable"
            yield InputLine(index, "", UnreadableInput(number + 1, why))
            return
        number += 1
        raw: bytes | str = line
        if isinstance(raw, bytes):
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            if not raw.strip():
                continue
        else:
            if number == 1 and raw.startswith("\ufeff"):
                raw = raw[1:]
            if not raw.strip(_ASCII_SPACE):
                continue
        text, problem = _decode_line(raw)
        record: object
        error: UnreadableInput | None
        if problem is not None:
            record, error = text, UnreadableInput(number, problem)
        else:
            record, error = parse_json_line(text, number)
        if error is not None:
            record = text.rstrip("\r\n")
        yield InputLine(index, record, error)
        index += 1


_BOM = b"\xef\xbb\xbf"
_ASCII_SPACE = " \t\n\r\x0b\x0c"


class _RowProblem(Exception):
    pass


def _set_dotted(target: dict[str, Any], dotted: str, value: object, column: str) -> None:
    head, _, rest = dotted.partition(".")
    if not rest:
        if head in target:
            raise _RowProblem(f"column {column!r} clashes with another column for {head!r}")
        target[head] = value
        return
    child = target.setdefault(head, {})
    if not isinstance(child, dict):
        raise _RowProblem(f"column {column!r} clashes with column {head!r}")
    _set_dotted(child, rest, value, column)


_CSV_LISTS = {"groups", "tags"}


def _row_record(header: list[str], names: list[str | None], cells: list[str]) -> dict[str, Any]:
    if len(cells) > len(header):
        raise _RowProblem(
            f"the row has {len(cells)} cells, the header {len(header)}: "
            "the extra cells would be lost"
        )
    record: dict[str, Any] = {}
    for column, name, cell in zip(header, names, cells, strict=False):
        if cell == "":
            continue
        if name is None:
            raise _RowProblem(f"a value under column {header.index(column) + 1}, which has no name")
        if _has_surrogate(cell):
            raise _RowProblem(f"column {column!r} is not UTF-8 text")
        head = name.split(".", 1)[0]
        value: Any = [n for n in cell.split("|") if n] if head in _CSV_LISTS else cell
        _set_dotted(record, name, value, column)
    return record


def _first_line(text_stream: Iterable[str]) -> tuple[str | None, Iterator[str]]:
    """The header's first physical line (to find the delimiter) and the stream after it."""
    lines = iter(text_stream)
    first = next(lines, None)
    return first, lines


def read_csv(stream: Iterable[bytes | str] | IO[bytes] | IO[str]) -> Iterator[InputLine]:
    """Rows with a header; dotted columns (``address.city``) nest; empty cells are absent.

    The file may start with a byte order mark and use ``,``, ``;`` or tabs (found from
    the header line). Header names are matched to the model's without regard to case
    or spaces (``First Name`` is ``first_name``). ``groups`` and ``tags`` cells hold
    names separated by ``|`` (groups replace, tags add); ``groups.add`` /
    ``groups.remove`` columns give the other modes.

    The header is read at once: :class:`InputError` if it cannot be read or names a
    column the model does not have. After that a row that cannot be read (not UTF-8,
    more cells than the header, a broken quote, clashing columns) is that row's
    :class:`InputLine` error; nothing raises.
    """
    text_stream: Iterable[str]
    wrapper: io.TextIOWrapper | None = None
    if isinstance(stream, io.TextIOBase):
        text_stream = stream
    elif isinstance(stream, io.BufferedIOBase | io.RawIOBase) or hasattr(stream, "readable"):
        wrapper = io.TextIOWrapper(
            stream,  # type: ignore[arg-type]
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="",
        )
        text_stream = wrapper
    else:
        text_stream = stream  # type: ignore[assignment]
    try:
        first, rest = _first_line(text_stream)
    except UnicodeDecodeError as exc:
        raise InputError(f"the CSV header cannot be read: {exc}") from None
    if first is None:
        return _csv_rows(None, None, [], wrapper)
    if first.startswith("\ufeff"):
        first = first[1:]
    reader = csv.reader(itertools.chain([first], rest), delimiter=sniff_delimiter(first))
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"the CSV header cannot be read: {exc}") from None
    names: list[str | None] = []
    if header is not None:
        bad = [n for n, column in enumerate(header, 1) if _has_surrogate(column)]
        if bad:
            raise InputError(f"the CSV header is not UTF-8 text (column {bad[0]})")
        try:
            names = match_header(header)
        except HeaderProblem as exc:
            raise InputError(str(exc)) from None
    return _csv_rows(reader, header, names, wrapper)


def _csv_rows(
    reader: Any,
    header: list[str] | None,
    names: list[str | None],
    wrapper: io.TextIOWrapper | None,
) -> Iterator[InputLine]:
    try:
        if header is None:
            return
        index = 0
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield InputLine(index, None, UnreadableInput(line, f"not CSV: {exc}"))
                index += 1
                continue
            except UnicodeDecodeError as exc:
                yield InputLine(index, None, UnreadableInput(line, f"not UTF-8: {exc.reason}"))
                return
            if not cells:
                continue
            try:
                record = _row_record(header, names, cells)
            except _RowProblem as exc:
                raw = dict(zip(header, cells, strict=False))
                yield InputLine(index, raw, UnreadableInput(line, str(exc)))
            else:
                yield InputLine(index, record)
            index += 1
    finally:
        if wrapper is not None:
            with contextlib.suppress(ValueError):
                wrapper.detach()


def read_json_array(stream: IO[bytes] | IO[str]) -> Iterator[InputLine]:
    """A ``.json`` file: one JSON array of contact objects, read whole (a file too big
    to hold in memory belongs in JSON lines). :class:`InputError` if it is not an
    array; each element is then one input, checked like a JSON line."""
    raw = stream.read()
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"the JSON file is not UTF-8: byte 0x{data[exc.start]:02x}") from None
    value, error = parse_json_line(text, 1)
    if error is not None:
        raise InputError(f"the JSON file cannot be read: {error.problem.removeprefix('line 1: ')}")
    if not isinstance(value, list):
        raise InputError(
            "a .json input must hold one JSON array of contact objects "
            "(for one object per line, name the file .jsonl)"
        )
    return (InputLine(index, item) for index, item in enumerate(value))


INPUT_KINDS = ("csv", "json", "jsonl")


def input_kind(path: str) -> str:
    """The input format a file name stands for: ``.csv``, ``.json``, else JSON lines."""
    lowered = path.lower()
    for kind in ("csv", "json"):
        if lowered.endswith(f".{kind}"):
            return kind
    return "jsonl"


def read_input(stream: Any, kind: str) -> Iterator[InputLine]:
    """``read_csv``, ``read_json_array`` or ``read_jsonl``; a CSV header, or a whole
    JSON array, is read (and checked) at once."""
    if kind == "csv":
        return read_csv(stream)
    if kind == "json":
        return read_json_array(stream)
    return read_jsonl(stream)


def dump_jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True))
        out.write("\n")
    return out.getvalue()
