"""The one table of statuses, error codes and skip reasons (docs/sending.md) names every
member of ``Status``, ``ErrorCode`` and ``SkipReason``, each under the status it comes
with, and says truly which statuses succeed and which the state store confirms."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

from contactsync import ErrorCode, Outcome, SkipReason, Status
from contactsync._state._types import CONFIRMED_STATUSES

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "sending.md"
OUTCOME_SOURCE = ROOT / "contactsync" / "_outcome.py"
MARK = "<!-- outcome table:"
_NAME = re.compile(r"^`([a-z_]+)`(?: · `([a-z_]+)`)?$")


def table_rows(text: str) -> dict[tuple[str, str | None], list[str]]:
    """The table after the marker: (status, code or reason) → its cells."""
    lines = text[text.index(MARK) :].splitlines()[1:]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows: dict[tuple[str, str | None], list[str]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = _NAME.match(cells[0])
        assert match, f"not an outcome: {cells[0]!r}"
        key = (match.group(1), match.group(2))
        assert key not in rows, f"{cells[0]} twice"
        rows[key] = cells
    return rows


def documented_status(enum_name: str) -> dict[str, str]:
    """Each member of ``enum_name`` in _outcome.py → the status its docstring starts
    with ("Rejected:" / "Failed:")."""
    tree = ast.parse(OUTCOME_SOURCE.read_text(encoding="utf-8"))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == enum_name]
    out: dict[str, str] = {}
    body = cls.body
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.Assign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            assert isinstance(node.value, ast.Constant)
            out[str(node.value.value)] = str(after.value.value).split(":", 1)[0].lower()
    return out


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, str | None], list[str]]:
    return table_rows(PAGE.read_text(encoding="utf-8"))


def test_every_status_has_a_row_saying_if_it_succeeds_and_is_confirmed(
    rows: dict[tuple[str, str | None], list[str]],
) -> None:
    for status in Status:
        cells = rows.get((status.value, None))
        assert cells is not None, f"docs/sending.md: no row for status `{status.value}`"
        ok = Outcome(0, status).ok
        assert cells[2] == ("yes" if ok else "no"), f"`{status.value}`: success column"
        confirmed = status.value in CONFIRMED_STATUSES
        assert cells[3] == ("yes" if confirmed else "no"), f"`{status.value}`: confirmed"
        in_failed = not ok
        assert cells[4].startswith("yes" if in_failed else "no"), f"`{status.value}`: --failed"


def test_every_error_code_has_a_row_under_its_status(
    rows: dict[tuple[str, str | None], list[str]],
) -> None:
    statuses = documented_status("ErrorCode")
    assert set(statuses) == {code.value for code in ErrorCode}
    for code in ErrorCode:
        status = statuses[code.value]
        assert status in ("rejected", "failed"), f"{code.value}: docstring says {status!r}"
        cells = rows.get((status, code.value))
        assert cells is not None, f"docs/sending.md: no row `{status}` · `{code.value}`"
        assert cells[2] == "no"
        assert cells[3] == "no"
        assert cells[4].startswith("yes")


def test_every_skip_reason_has_a_row(rows: dict[tuple[str, str | None], list[str]]) -> None:
    for reason in SkipReason:
        cells = rows.get((Status.SKIPPED.value, reason.value))
        assert cells is not None, f"docs/sending.md: no row `skipped` · `{reason.value}`"
        assert cells[2:4] == ["yes", "no"]
        assert cells[4] == "no"


def test_the_table_names_nothing_else(rows: dict[tuple[str, str | None], list[str]]) -> None:
    known: set[tuple[str, str | None]] = {(s.value, None) for s in Status}
    known |= {(Status.SKIPPED.value, r.value) for r in SkipReason}
    known |= {(status, code) for code, status in documented_status("ErrorCode").items()}
    assert set(rows) - known == set()


def test_the_incremental_and_why_pages_link_to_it() -> None:
    for page in ("incremental.md", "why.md"):
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        assert "sending.md#statuses-error-codes-and-skip-reasons" in text, page
    assert "### Statuses, error codes and skip reasons" in PAGE.read_text(encoding="utf-8")
