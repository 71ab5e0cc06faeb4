"""The input readers never lose a row: a quoted CSV field runs at most
``input.max_record_lines`` lines and ``input.max_field_bytes`` bytes, a record over a
limit (or still open at the end) is one unreadable outcome of its first line, and
reading goes on at the next line.

The two invariants, checked on random input: every physical line belongs to exactly
one outcome (or is the header or blank), and a well-formed line gets the same outcome
whether or not a malformed record comes before it."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactsync._config import load_config
from contactsync._errors import ConfigError
from contactsync._records import (
    MAX_FIELD_BYTES,
    MAX_RECORD_LINES,
    InputLine,
    UnreadableInput,
    read_csv,
    read_jsonl,
)

HEADER = "external_id,first_name,email\n"


def rows(text: str, **limits: int) -> list[InputLine]:
    return list(read_csv(io.BytesIO(text.encode("utf-8", "surrogateescape")), **limits))


def row(n: int) -> str:
    return f"e{n},Name{n},e{n}@example.com\n"


def unreadable(line: InputLine) -> UnreadableInput:
    assert isinstance(line.error, UnreadableInput), line
    return line.error


def test_an_unclosed_quote_is_one_unreadable_row_and_the_rest_are_read() -> None:
    # The issue's file: 10 rows, row 2's first_name opens a quote that never closes.
    body = [row(n) for n in range(1, 11)]
    body[1] = 'e2,"Ada,e2@example.com\n'
    out = rows(HEADER + "".join(body))
    assert [line.index for line in out] == list(range(10))
    assert [line.lines for line in out] == [(n, n) for n in range(2, 12)]
    error = unreadable(out[1])
    assert error.code == "unreadable_input"
    assert (error.line, error.last) == (3, 11)
    assert str(error) == (
        "<line>: lines 3\u201311: a quoted field opened on line 3 is still open at the end "
        "of the file"
    )
    assert out[1].record == 'e2,"Ada,e2@example.com'  # the line as it was, to fix
    assert [line.record["external_id"] for line in out if line.error is None] == [  # type: ignore[index]
        f"e{n}" for n in (1, *range(3, 11))
    ]


def test_a_quoted_line_break_within_the_limits_is_one_record() -> None:
    out = rows(HEADER + 'a,"Ada\r\nLovelace",a@example.com\r\n' + row(2))
    assert [line.error for line in out] == [None, None]
    assert out[0].record == {
        "external_id": "a",
        "first_name": "Ada\r\nLovelace",
        "email": "a@example.com",
    }
    assert [line.lines for line in out] == [(2, 3), (4, 4)]


def test_a_record_over_max_record_lines_restarts_at_its_second_line() -> None:
    # A quote closing on the fourth line is a record of four lines: over a limit of 3.
    text = HEADER + 'a,"x\n' + row(1) + row(2) + 'y",a@example.com\n' + row(3)
    out = rows(text, max_record_lines=3)
    error = unreadable(out[0])
    assert (error.line, error.last) == (2, 4)
    assert "does not close within input.max_record_lines (3) lines" in str(error)
    assert [line.lines for line in out] == [(n, n) for n in range(2, 7)]
    # Each line after the first is read again as a row of its own (a quote inside an
    # unquoted cell, as in `y"`, is a character of that cell).
    assert [line.error is None for line in out] == [False, True, True, True, True]
    assert out[3].record == {"external_id": 'y"', "first_name": "a@example.com"}
    # The same record within a limit of 4 is one record of four lines.
    out = rows(text, max_record_lines=4)
    assert [line.error for line in out] == [None, None]
    assert [line.lines for line in out] == [(2, 5), (6, 6)]


def test_the_default_record_limit_is_twenty_lines() -> None:
    assert MAX_RECORD_LINES == 20
    inner = "".join(f"line {n}\n" for n in range(19))
    fits = HEADER + f'a,"{inner}end",a@example.com\n'  # 20 lines
    assert [line.error for line in rows(fits)] == [None]
    over = HEADER + f'a,"{inner}x\nend",a@example.com\n'  # 21 lines
    assert "input.max_record_lines (20)" in str(rows(over)[0].error)


def test_a_cell_over_max_field_bytes_is_unreadable() -> None:
    assert MAX_FIELD_BYTES == 131_072
    big = "é" * 60  # 120 bytes in UTF-8, 60 characters
    out = rows(HEADER + f"a,{big},a@example.com\n" + row(1), max_field_bytes=100)
    assert "line 2: column 2 is over input.max_field_bytes (100 bytes)" in str(out[0].error)
    assert out[1].error is None
    assert [line.error for line in rows(HEADER + f"a,{big},x\n", max_field_bytes=120)] == [None]


def test_a_cell_over_the_default_limit_is_named_as_such() -> None:
    # Past 131,072 characters the csv module itself refuses the cell: the same limit.
    out = rows(HEADER + f"a,{'x' * (MAX_FIELD_BYTES + 1)},a@example.com\n" + row(1))
    assert str(out[0].error).startswith("<line>: line 2: ")
    assert str(out[0].error).endswith(" is over input.max_field_bytes (131072 bytes)")
    assert out[1].error is None
    at_limit = rows(HEADER + f"a,{'x' * MAX_FIELD_BYTES},a@example.com\n")
    assert [line.error for line in at_limit] == [None]


def test_a_larger_max_field_bytes_takes_cells_the_csv_module_would_refuse() -> None:
    text = HEADER + f"a,{'x' * (MAX_FIELD_BYTES + 10)},a@example.com\n"
    before = csv.field_size_limit()
    try:
        assert [line.error for line in rows(text, max_field_bytes=MAX_FIELD_BYTES * 2)] == [None]
    finally:
        csv.field_size_limit(before)  # the limit is process-wide


def test_an_open_field_running_past_max_field_bytes_stops_there() -> None:
    # Memory stays bounded: the open field is refused once its lines pass the limit.
    filler = ("x" * 50 + "\n") * 10
    out = rows(HEADER + 'a,"' + filler + 'end",a@example.com\n', max_field_bytes=120)
    error = unreadable(out[0])
    # 51 bytes a line after the first: the third of them passes 120.
    assert (error.line, error.last) == (2, 5)
    assert "runs past input.max_field_bytes (120 bytes)" in str(error)
    assert len(out) == 11  # each line after the first is its own row


@pytest.mark.parametrize(
    ("swallowed", "why"),
    [
        # The quote left open ends at the next line's opening quote.
        ('b,"Smith, Jr",b@example.com\n', "cells, the header 3"),
        # Three cells, but a closing quote inside a cell: not a writer's record.
        ('b,",x",c\n', "quotes are not where a CSV writer puts them"),
    ],
)
def test_a_quote_closed_by_a_later_row_does_not_swallow_it(swallowed: str, why: str) -> None:
    opened = '"Ada\n' if why.startswith("quotes") else 'a,"Ada\n'
    alone = rows(HEADER + swallowed)
    out = rows(HEADER + opened + swallowed)
    assert why in str(out[0].error)
    assert [(line.record, line.error) for line in out[1:]] == [
        (line.record, line.error) for line in alone
    ]


def test_an_excel_file_with_crlf_and_semicolons_loses_no_row() -> None:
    # Excel's "CSV UTF-8": a byte order mark, semicolons, CRLF line ends.
    names = ["N1", '"Ada', "N3", "N4", "N5"]
    text = "\ufeffexternal_id;first_name;email\r\n" + "".join(
        f"e{n};{name};e{n}@example.com\r\n" for n, name in enumerate(names, 1)
    )
    out = rows(text)
    assert [line.lines for line in out] == [(n, n) for n in range(2, 7)]
    assert [line.error is None for line in out] == [True, False, True, True, True]
    assert str(out[1].error).startswith("<line>: lines 3\u20136: a quoted field opened on line 3")
    assert out[1].record == 'e2;"Ada;e2@example.com'
    assert out[4].record == {"external_id": "e5", "first_name": "N5", "email": "e5@example.com"}


def test_a_well_formed_record_over_lines_keeps_its_own_row_problem() -> None:
    # A record that spans lines and is well formed is one record, also when a cell of
    # it cannot be used: that row's problem, over its lines.
    out = rows(HEADER + 'a,"x\ny\udcff",a@example.com\n' + row(1))
    error = unreadable(out[0])
    assert (error.line, error.last) == (2, 3)
    assert "column 'first_name' is not UTF-8" in str(error)
    assert [line.lines for line in out] == [(2, 3), (4, 4)]


def test_an_open_quote_in_the_header_is_named_by_its_lines() -> None:
    from contactsync._records import InputError  # noqa: PLC0415

    with pytest.raises(InputError, match=r"lines 1\u20133: a quoted field opened on line 1"):
        rows('"external_id,email\n' + row(1) + row(2))


def test_a_json_string_over_max_field_bytes_makes_its_line_unreadable() -> None:
    data = (
        json.dumps({"external_id": "a", "first_name": "é" * 60}).encode()
        + b"\n"
        + json.dumps({"external_id": "b", "first_name": "é" * 50}).encode()
        + b"\n"
    )
    out = list(read_jsonl(io.BytesIO(data), max_field_bytes=100))
    assert "line 1: a string is over input.max_field_bytes (100 bytes)" in str(out[0].error)
    assert out[0].record == data.split(b"\n")[0].decode()
    assert out[1].error is None


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({"max_record_lines": 0}, "input.max_record_lines", "must be at least 1"),
        ({"max_record_lines": "20"}, "input.max_record_lines", "must be an integer"),
        ({"max_field_bytes": 0}, "input.max_field_bytes", "must be at least 1"),
        ({"max_field_bytes": 1 << 31}, "input.max_field_bytes", "must be at most"),
        ({"max_lines": 3}, "input.max_lines", "unknown key"),
    ],
)
def test_the_input_limits_are_checked_naming_the_key(
    table: dict[str, Any], key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"tenants": {}, "input": table})
    assert caught.value.path == key
    assert problem in caught.value.problem


def test_the_input_limits_default_and_load() -> None:
    assert load_config({"tenants": {}}).input.limits() == {
        "max_record_lines": 20,
        "max_field_bytes": 131_072,
    }
    loaded = load_config({"tenants": {}, "input": {"max_record_lines": 3, "max_field_bytes": 9}})
    assert loaded.input.limits() == {"max_record_lines": 3, "max_field_bytes": 9}


# -- the invariants, on random input ----------------------------------------------------------

FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Cells as people type them, with the characters that matter to CSV.
cell_text = st.text(alphabet='ab ,"é\t;', max_size=6)


def _written(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


# A well-formed line: three cells as a CSV writer writes them (no line break inside).
well_formed = st.lists(cell_text, min_size=3, max_size=3).map(_written)


@st.composite
def quote_dropped(draw: st.DrawFn) -> str:
    """A line with a quote put in at a random place (or one of its quotes removed)."""
    line = draw(well_formed).rstrip("\n")
    at = draw(st.integers(0, len(line)))
    if '"' in line and draw(st.booleans()):
        quotes = [i for i, c in enumerate(line) if c == '"']
        cut = draw(st.sampled_from(quotes))
        return line[:cut] + line[cut + 1 :] + "\n"
    return line[:at] + '"' + line[at:] + "\n"


# Random bytes (as the reader's text: undecodable bytes kept as surrogate escapes).
raw_text = st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape"))
# The same within one physical line.
noise = raw_text.map(lambda t: t.replace("\r", "").replace("\n", ""))
any_line = st.one_of(well_formed, quote_dropped(), raw_text.map(lambda t: t + "\n"), st.just("\n"))


def _physical(text: str) -> list[str]:
    """The physical lines the reader numbers (a TextIOWrapper with ``newline=""``)."""
    data = io.BytesIO(text.encode("utf-8", "surrogateescape"))
    wrapper = io.TextIOWrapper(data, encoding="utf-8", errors="surrogateescape", newline="")
    return list(wrapper)


def _owned(out: list[InputLine]) -> list[int]:
    owned: list[int] = []
    for line in out:
        assert line.lines is not None
        owned.extend(range(line.lines[0], line.lines[1] + 1))
    return owned


@FAST
@given(
    st.lists(any_line, max_size=25),
    st.integers(1, 6),
    st.sampled_from([8, 40, MAX_FIELD_BYTES]),
)
def test_every_csv_line_belongs_to_exactly_one_outcome(
    body: list[str], max_lines: int, max_bytes: int
) -> None:
    text = HEADER + "".join(body)
    out = rows(text, max_record_lines=max_lines, max_field_bytes=max_bytes)
    assert [line.index for line in out] == list(range(len(out)))
    owned = _owned(out)
    assert len(owned) == len(set(owned)), "a line belongs to two outcomes"
    lines = _physical(text)
    for number, line in enumerate(lines[1:], 2):
        if number not in owned:
            assert line.strip("\r\n") == "", f"line {number} ({line!r}) has no outcome"


def _outcomes(text: str) -> dict[int, tuple[object, str | None]]:
    """Each line's outcome by physical line: the record, or the error without the
    line numbers (they shift when lines are put in before)."""
    found: dict[int, tuple[object, str | None]] = {}
    for line in rows(text, max_record_lines=4):
        assert line.lines is not None
        error = None if line.error is None else str(line.error).split(": ", 2)[-1]
        found[line.lines[0]] = (line.record, error)
    return found


@FAST
@given(
    st.lists(well_formed, min_size=1, max_size=12),
    st.tuples(st.integers(0, 12), quote_dropped()),
    st.lists(st.tuples(st.integers(0, 12), noise.map(lambda t: t.replace('"', ""))), max_size=3),
)
def test_a_well_formed_line_reads_the_same_after_a_malformed_one(
    good: list[str], broken: tuple[int, str], noisy: list[tuple[int, str]]
) -> None:
    # One line with a quote out of place, and lines of random bytes without quotes.
    # (Two lines with a quote out of place may together be a well-formed record, which
    # holds the lines between them: read as such, rightly.)
    clean = _outcomes(HEADER + "".join(good))
    body: list[tuple[str, int | None]] = [(line, n) for n, line in enumerate(good)]
    for at, bad in sorted([broken, *noisy], reverse=True):
        body.insert(min(at, len(body)), (bad.rstrip("\n") + "\n", None))
    dirty = _outcomes(HEADER + "".join(line for line, _ in body))
    for number, (_, n) in enumerate(body, 2):
        if n is not None:
            assert dirty.get(number) == clean[n + 2], f"well-formed line {n} read differently"


json_line = st.one_of(
    st.dictionaries(st.sampled_from(["external_id", "email", "first_name"]), cell_text).map(
        json.dumps
    ),
    noise,
)


@st.composite
def json_with_quotes(draw: st.DrawFn) -> str:
    line = draw(json_line)
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(line)))
        line = line[:at] + '"' + line[at:]
    return line


@FAST
@given(st.lists(json_with_quotes(), max_size=20))
def test_every_json_line_is_its_own_outcome_whatever_precedes_it(lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines)
    out = list(read_jsonl(io.BytesIO(text.encode("utf-8", "surrogateescape"))))
    owned = _owned(out)
    assert len(owned) == len(set(owned))
    for number, line in enumerate(lines, 1):
        # A byte order mark opening the file is not part of its first line.
        text_of = line.removeprefix("\ufeff") if number == 1 else line
        assert (number in owned) == bool(text_of.strip(" \t\r\x0b\x0c"))
    # Each line reads as it does alone (after a blank line: not the file's first).
    for item in out:
        assert item.lines is not None
        number = item.lines[0]
        alone = ("" if number == 1 else "\n") + lines[number - 1] + "\n"
        again = list(read_jsonl(io.BytesIO(alone.encode("utf-8", "surrogateescape"))))
        assert [(a.record, str(a.error).split(": ", 2)[-1]) for a in again] == [
            (item.record, str(item.error).split(": ", 2)[-1])
        ]
