"""Contacts as plain records: the JSON-lines and CSV input forms, and back.

The record keys are the model's field names. ``groups`` is a list (replace) or
``{"add": [...], "remove": [...]}``; ``tags`` is a list (add) or the same object.
"""

from __future__ import annotations

import collections
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
    lines: tuple[int, int] | None = None
    """The first and last physical line (1-based) it was read from, when read from a
    file: a CSV record with a quoted line break spans several."""


class UnreadableInput(ContactError):
    """An input line (or CSV row) that could not be read as a record.

    ``code`` is the outcome error code it stands for; ``line`` the 1-based physical
    line of the input where it starts, ``last`` the last line it was read up to.
    """

    code = "unreadable_input"

    def __init__(self, line: int, problem: str, last: int | None = None) -> None:
        self.line = line
        self.last = line if last is None else last
        where = f"line {line}" if self.last == line else f"lines {line}\u2013{self.last}"
        super().__init__("<line>", f"{where}: {problem}")


class InputError(ContactsyncError):
    """The input as a whole cannot be read (e.g. a CSV header); nothing was sent."""


MAX_RECORD_LINES = 20
"""Default of ``input.max_record_lines``: the physical lines one CSV record may span
(a quoted field holding line breaks)."""
MAX_FIELD_BYTES = 131_072
"""Default of ``input.max_field_bytes``: the UTF-8 bytes of one CSV cell or one JSON
string (128 KiB: four times a spreadsheet cell's 32,767 characters, and the csv
module's own default limit)."""


def _size(text: str) -> int:
    """UTF-8 bytes of ``text`` (a surrogate escape counted as the bytes it stands for,
    at most 3)."""
    return len(text.encode("utf-8", "surrogatepass"))


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


def _long_string(value: object, max_bytes: int) -> bool:
    """Whether a string in ``value`` (a key or a value, at any depth) is over
    ``max_bytes`` UTF-8 bytes."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) * 4 > max_bytes and _size(item) > max_bytes:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def read_jsonl(
    stream: Iterable[bytes | str], *, max_field_bytes: int = MAX_FIELD_BYTES
) -> Iterator[InputLine]:
    """One :class:`InputLine` per non-blank line; never raises on what the input holds.

    A JSON line is one record (a line break in a string is written ``\\n``, so the
    CSV reader's ``max_record_lines`` has nothing to limit); a string in it over
    ``max_field_bytes`` UTF-8 bytes makes the line unreadable.

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
            # Only a line longer than the limit can hold a string over it (JSON text
            # takes at least the bytes of the string it writes).
            longest = len(raw) if isinstance(raw, bytes) else 4 * len(raw)
            if (
                error is None
                and longest > max_field_bytes
                and _long_string(record, max_field_bytes)
            ):
                why = f"a string is over input.max_field_bytes ({max_field_bytes} bytes)"
                error = UnreadableInput(number, why)
        if error is not None:
            record = text.rstrip("\r\n")
        yield InputLine(index, record, error, (number, number))
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


class _Lines:
    """The physical lines of a text stream, numbered from 1, with those read ahead of
    the record being read kept: a record that turns out unreadable gives back every
    line after its first, to be read again."""

    def __init__(self, source: Iterable[str]) -> None:
        self._source = iter(source)
        self.pending: collections.deque[str] = collections.deque()
        self.first = 1
        """The number of ``pending[0]`` (of the next line read, when none is pending)."""
        self._ended = False

    def get(self, k: int) -> str | None:
        """The ``k``-th line from :attr:`first` (0-based), read when needed; ``None``
        past the end. A text stream that meets bytes it cannot decode raises here."""
        if k < len(self.pending):
            return self.pending[k]
        while len(self.pending) <= k:
            if self._ended:
                return None
            try:
                self.pending.append(next(self._source))
            except StopIteration:
                self._ended = True
                return None
        return self.pending[k]

    def drop(self, count: int) -> None:
        for _ in range(count):
            self.pending.popleft()
        self.first += count


class _StillOpen(Exception):
    """A quoted field is still open where reading its record had to stop."""


class _Record:
    """CSV records read from :class:`_Lines`, one at a time: the lines each takes are
    counted, and a quoted field may not run past ``max_lines`` lines, past
    ``max_bytes`` bytes on the lines after the first (all of them inside that field),
    or past the end.

    It is the csv reader's line iterator (one reader for the whole file: the reader
    starts each record afresh, also after an error), which asks for another line only
    while a quoted field is open."""

    def __init__(self, lines: _Lines, max_lines: int, max_bytes: int) -> None:
        self.lines = lines
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.taken = 0
        self._spilled = 0
        self._reader: Iterator[list[str]] | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        taken = self.taken
        if taken >= self.max_lines:
            raise _StillOpen(
                f"does not close within input.max_record_lines ({self.max_lines}) lines"
            )
        line = self.lines.get(taken)
        if line is None:
            if taken == 0:
                raise StopIteration  # the end of the input, between records
            raise _StillOpen("is still open at the end of the file")
        self.taken = taken + 1
        if taken:
            self._spilled += _size(line)
            if self._spilled > self.max_bytes:
                raise _StillOpen(f"runs past input.max_field_bytes ({self.max_bytes} bytes)")
        return line

    def read(self, delimiter: str) -> list[str]:
        """The next record's cells. Raises StopIteration at the end of the input,
        :class:`_StillOpen`, ``csv.Error`` or ``UnicodeDecodeError``."""
        self.taken = self._spilled = 0
        if self._reader is None:
            self._reader = csv.reader(self, delimiter=delimiter)
        return next(self._reader)


def _well_quoted(text: str, delimiter: str) -> bool:
    """Whether every quote of a record stands where a CSV writer puts one: opening a
    field, doubled inside a quoted field, or closing it before a delimiter or a line's
    end; and no quoted field is left open."""
    quoted = False
    at_start = True  # at the start of a field
    i, end = 0, len(text)
    while i < end:
        char = text[i]
        if quoted:
            if char == '"':
                if text.startswith('"', i + 1):
                    i += 2
                    continue
                quoted = False
                if text[i + 1 : i + 2] not in (delimiter, "\r", "\n", ""):
                    return False
        elif char == '"':
            if not at_start:
                return False
            quoted = True
        at_start = not quoted and char in (delimiter, "\r", "\n")
        i += 1
    return not quoted


def _spanning_problem(text: str, delimiter: str, width: int, cells: list[str]) -> str | None:
    """Why a record read over several lines is not one record, or ``None``.

    A quote left open by mistake runs on into the lines after it, and ends at whatever
    quote comes next: what it swallowed are rows of their own. A record that holds a
    line break must be well formed: its quotes stand where a CSV writer puts them (see
    :func:`_well_quoted`), and it has as many cells as the header (trailing empty cells
    written too, as every spreadsheet does)."""
    if len(cells) != width:
        return f"read as one record it has {len(cells)} cells, the header {width}"
    if not _well_quoted(text, delimiter):
        return "read as one record its quotes are not where a CSV writer puts them"
    return None


def _oversized(cells: list[str], max_bytes: int) -> int | None:
    """The 1-based column of the first cell over ``max_bytes`` UTF-8 bytes, if any."""
    # A character is at most 4 bytes: most rows need no encoding to be cleared.
    if not cells or 4 * max(map(len, cells)) <= max_bytes:
        return None
    for column, cell in enumerate(cells, 1):
        if len(cell) * 4 > max_bytes and _size(cell) > max_bytes:
            return column
    return None


def _text_stream(stream: Any) -> tuple[Iterable[str], io.TextIOWrapper | None]:
    if isinstance(stream, io.TextIOBase):
        return stream, None
    if isinstance(stream, io.BufferedIOBase | io.RawIOBase) or hasattr(stream, "readable"):
        wrapper = io.TextIOWrapper(
            stream,
            encoding="utf-8-sig",
            errors="surrogateescape",
            newline="",
        )
        return wrapper, wrapper
    return stream, None


def read_csv(
    stream: Iterable[bytes | str] | IO[bytes] | IO[str],
    *,
    max_record_lines: int = MAX_RECORD_LINES,
    max_field_bytes: int = MAX_FIELD_BYTES,
) -> Iterator[InputLine]:
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

    A quoted field may hold line breaks: its record then spans up to
    ``max_record_lines`` physical lines, and no cell may be over ``max_field_bytes``
    UTF-8 bytes. A record over either limit, still open at the end of the input, or
    not well formed once read over several lines (see :func:`_spanning_problem`) is
    an unreadable record of its first line, and reading goes on at the line after
    that one: no row is lost inside another's open quote.
    """
    if max_field_bytes > csv.field_size_limit():
        # The csv module's own cap (131,072 characters by default, process-wide) would
        # refuse a cell this reader is configured to take; it is only ever raised.
        csv.field_size_limit(max_field_bytes)
    text_stream, wrapper = _text_stream(stream)
    lines = _Lines(text_stream)
    try:
        first = lines.get(0)
    except UnicodeDecodeError as exc:
        raise InputError(f"the CSV header cannot be read: {exc}") from None
    if first is None:
        return _csv_rows(None, [], _Record(lines, 1, 1), "", wrapper)
    if first.startswith("\ufeff"):
        lines.pending[0] = first = first[1:]
    delimiter = sniff_delimiter(first)
    record = _Record(lines, max_record_lines, max_field_bytes)
    try:
        header: list[str] | None = record.read(delimiter)
    except StopIteration:
        header = None
    except _StillOpen as exc:
        last = lines.first + record.taken - 1
        where = f"lines 1\u2013{last}" if last > 1 else "line 1"
        raise InputError(
            f"the CSV header cannot be read: {where}: a quoted field opened on line 1 {exc}"
        ) from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"the CSV header cannot be read: {exc}") from None
    lines.drop(record.taken)
    names: list[str | None] = []
    if header is not None:
        bad = [n for n, column in enumerate(header, 1) if _has_surrogate(column)]
        if bad:
            raise InputError(f"the CSV header is not UTF-8 text (column {bad[0]})")
        try:
            names = match_header(header)
        except HeaderProblem as exc:
            raise InputError(str(exc)) from None
    return _csv_rows(header, names, record, delimiter, wrapper)


def _next_record(record: _Record, delimiter: str, width: int) -> tuple[list[str], str | None]:
    """The next record's cells, or why it is unreadable (then ``record.taken`` lines
    were read for it). Raises StopIteration at the end, UnicodeDecodeError for a text
    stream that cannot go on."""
    lines, first = record.lines, record.lines.first
    try:
        cells = record.read(delimiter)
    except _StillOpen as exc:
        return [], f"a quoted field opened on line {first} {exc}"
    except csv.Error as exc:
        if "field limit" in str(exc):
            # The csv module's own cap, never below ``max_bytes``: a cell over it is
            # over ours too.
            return [], _over_field_bytes(None, record.max_bytes)
        return [], f"not CSV: {exc}"
    if record.taken > 1:
        text = "".join(itertools.islice(lines.pending, record.taken))
        problem = _spanning_problem(text, delimiter, width, cells)
        if problem is not None:
            return [], f"a quoted field opened on line {first}: {problem}"
    column = _oversized(cells, record.max_bytes)
    if column is not None:
        return [], _over_field_bytes(column, record.max_bytes)
    return cells, None


def _over_field_bytes(column: int | None, max_bytes: int) -> str:
    cell = "a cell" if column is None else f"column {column}"
    return f"{cell} is over input.max_field_bytes ({max_bytes} bytes)"


def _csv_rows(
    header: list[str] | None,
    names: list[str | None],
    record: _Record,
    delimiter: str,
    wrapper: io.TextIOWrapper | None,
) -> Iterator[InputLine]:
    lines = record.lines
    try:
        if header is None:
            return
        index = 0
        while True:
            first = lines.first
            try:
                cells, problem = _next_record(record, delimiter, len(header))
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                why = f"not UTF-8: {exc.reason}; the rest of this text stream is unreadable"
                yield InputLine(index, "", UnreadableInput(first, why), (first, first))
                return
            last = first + max(record.taken, 1) - 1
            if problem is not None:
                # Only the first line is this record's: the lines after it are read
                # again, as rows of their own.
                text = (lines.get(0) or "").rstrip("\r\n")
                yield InputLine(index, text, UnreadableInput(first, problem, last), (first, first))
                index += 1
                lines.drop(1)
                continue
            lines.drop(record.taken)
            if not cells:
                continue
            try:
                row = _row_record(header, names, cells)
            except _RowProblem as exc:
                raw = dict(zip(header, cells, strict=False))
                yield InputLine(index, raw, UnreadableInput(first, str(exc), last), (first, last))
            else:
                yield InputLine(index, row, None, (first, last))
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


def read_input(
    stream: Any,
    kind: str,
    *,
    max_record_lines: int = MAX_RECORD_LINES,
    max_field_bytes: int = MAX_FIELD_BYTES,
) -> Iterator[InputLine]:
    """``read_csv``, ``read_json_array`` or ``read_jsonl``; a CSV header, or a whole
    JSON array, is read (and checked) at once. The limits are the config's ``[input]``
    (see :class:`~contactsync._config.InputConfig`)."""
    if kind == "csv":
        return read_csv(stream, max_record_lines=max_record_lines, max_field_bytes=max_field_bytes)
    if kind == "json":
        return read_json_array(stream)
    return read_jsonl(stream, max_field_bytes=max_field_bytes)


def dump_jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, sort_keys=True))
        out.write("\n")
    return out.getvalue()
