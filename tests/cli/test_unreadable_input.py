"""End to end: a CSV quote left open costs that one row, never the rows after it, and
the ``[input]`` limits reach every way a run reads INPUT."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactsync._cli import main
from contactsync.testing import EmulatorApp, serve_in_thread
from tests.cli.test_input_files import CONFIG, flat, upsert
from tests.fakeprovider import DEMO_KEY, FakeProvider

HEADER = "external_id,first_name,email\n"


def people(count: int) -> list[str]:
    return [f"e{n},Name{n},e{n}@example.com\n" for n in range(1, count + 1)]


@pytest.fixture
def loopback() -> Iterator[str]:
    server, url = serve_in_thread(EmulatorApp(FakeProvider.create_emulator()))
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def test_an_unclosed_quote_in_row_2_costs_row_2_only(tmp_path: Path, loopback: str) -> None:
    # The issue's reproduction: 10 rows, row 2's first_name opens a quote that never
    # closes. It gave 2 outcomes for 10 rows; rows 3-10 had none.
    rows = people(10)
    rows[1] = 'e2,"Ada,e2@example.com\n'
    (tmp_path / "in.csv").write_text(HEADER + "".join(rows))
    config = tmp_path / "c.toml"
    config.write_text(
        f'[tenants.t]\nprovider = "fake"\n[tenants.t.credentials]\napi_key = "{DEMO_KEY}"\n'
    )
    report, failed = tmp_path / "report.json", tmp_path / "failed.jsonl"
    args = ["upsert", "--config", str(config), "--tenant", "t", "--base-url", loopback]
    args += [str(tmp_path / "in.csv"), "--report", str(report), "--failed", str(failed)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    outcomes = sorted(json.loads(report.read_text())["outcomes"], key=lambda o: o["index"])
    assert [o["index"] for o in outcomes] == list(range(10))
    assert [o["status"] for o in outcomes] == ["created", "rejected", *["created"] * 8]
    assert outcomes[1]["error"] == {
        "code": "unreadable_input",
        "field": "<line>",
        "message": "<line>: lines 3\u201311: a quoted field opened on line 3 is still open "
        "at the end of the file",
        "retryable": False,
    }
    summary = json.loads(report.read_text())["summary"]
    assert (summary["created"], summary["rejected"]) == (9, 1)
    # --failed holds the row as it was, to fix and send again; nothing else.
    assert failed.read_bytes() == b'e2,"Ada,e2@example.com\n'
    assert "unreadable_input" in flat(result)
    stored = httpx.get(f"{loopback}/__emulator__/contacts").json()
    assert sorted(c["external_id"] for c in stored) == sorted(
        f"e{n}" for n in range(1, 11) if n != 2
    )


def _config(tmp_path: Path, table: str = "") -> str:
    path = tmp_path / "limits.toml"
    path.write_text(CONFIG + "[tenants.t.custom_fields]\nnotes = 7\n" + table)
    return str(path)


# A quoted field over three lines (a record of three lines), and two rows after it.
SPANNING = (
    "external_id,custom_fields.notes,email\n"
    'a,"one\ntwo\nthree",a@example.com\n'
    "e1,x,e1@example.com\ne2,y,e2@example.com\n"
)


@pytest.mark.parametrize("store", [False, True], ids=["streamed", "read-ahead"])
def test_max_record_lines_comes_from_the_config(tmp_path: Path, store: bool) -> None:
    extra = ["--state", f"sqlite:///{tmp_path}/state.db"] if store else []
    config = _config(tmp_path)
    _, report = upsert(tmp_path, SPANNING.encode(), "in.csv", "--config", config, *extra)
    # Read as one record (then refused by the model: a name or a field holds no line
    # break), and the rows after it as theirs.
    assert [o["status"] for o in report["outcomes"]] == ["rejected", "created", "created"]
    assert report["outcomes"][0]["error"]["code"] == "invalid_contact"
    limited = _config(tmp_path, "[input]\nmax_record_lines = 2\n")
    result, report = upsert(tmp_path, SPANNING.encode(), "in.csv", "--config", limited, *extra)
    assert result.exit_code == 2, result.output
    by_index = {o["index"]: o for o in report["outcomes"]}
    # The record's first line is rejected; its other lines are read again as rows.
    assert len(by_index) == 5
    assert by_index[0]["error"]["code"] == "unreadable_input"
    assert "lines 2\u20133" in by_index[0]["error"]["message"]
    assert "input.max_record_lines (2)" in by_index[0]["error"]["message"]
    assert [by_index[i]["external_id"] for i in (3, 4)] == ["e1", "e2"]
    # (With a store, the first run's rows are unchanged now.)
    assert {by_index[i]["status"] for i in (3, 4)} == {"unchanged" if store else "created"}


def test_max_field_bytes_comes_from_the_config(tmp_path: Path) -> None:
    limited = _config(tmp_path, "[input]\nmax_field_bytes = 64\n")
    big = json.dumps({"external_id": "big", "first_name": "x" * 65}).encode() + b"\n"
    small = json.dumps({"external_id": "ok", "first_name": "x" * 64}).encode() + b"\n"
    failed = tmp_path / "failed.jsonl"
    result, report = upsert(
        tmp_path, big + small, "in.jsonl", "--config", limited, "--failed", str(failed)
    )
    assert result.exit_code == 2, result.output
    assert [o["status"] for o in report["outcomes"]] == ["rejected", "created"]
    assert "input.max_field_bytes (64 bytes)" in report["outcomes"][0]["error"]["message"]
    assert failed.read_bytes() == big


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("max_record_lines = 0", "input.max_record_lines: must be at least 1"),
        ('max_field_bytes = "1MB"', "input.max_field_bytes: must be an integer"),
        ("max_lines = 5", "input.max_lines: unknown key"),
    ],
)
def test_a_bad_input_limit_ends_the_command_before_sending(
    tmp_path: Path, table: str, message: str
) -> None:
    config = _config(tmp_path, f"[input]\n{table}\n")
    result, _ = upsert(tmp_path, SPANNING.encode(), "in.csv", "--config", config)
    assert result.exit_code == 1, result.output
    assert message in flat(result)
    assert not (tmp_path / "report.json").exists()


# -- random quote placement, end to end -----------------------------------------------------


def _written(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


@st.composite
def files(draw: st.DrawFn) -> tuple[list[str], int, str]:
    """Well-formed rows (distinct people), and one line with a quote put in at a random
    place, to go before row ``at``."""
    names = st.text(alphabet='ab ,"é', max_size=6)
    count = draw(st.integers(1, 8))
    rows = [_written([f"p{n}", draw(names), f"p{n}@example.com"]) for n in range(count)]
    line = draw(st.sampled_from(rows)).rstrip("\n")
    cut = draw(st.integers(0, len(line)))
    broken = line[:cut] + '"' + line[cut:] + "\n"
    return rows, draw(st.integers(0, count)), broken.replace("p", "q")  # another person


def _statuses(report: Any) -> dict[str | None, tuple[str, Any]]:
    return {
        o["external_id"]: (o["status"], o["error"] and o["error"]["code"])
        for o in report["outcomes"]
    }


def _run(data: str) -> tuple[Result, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return upsert(Path(tmp), data.encode(), "in.csv")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files())
def test_a_quote_out_of_place_changes_no_other_rows_outcome(
    case: tuple[list[str], int, str],
) -> None:
    rows, at, broken = case
    _, clean = _run(HEADER + "".join(rows))
    result, dirty = _run(HEADER + "".join(rows[:at]) + broken + "".join(rows[at:]))
    assert result.exit_code in (0, 2), result.output
    # Every line one outcome: the rows, and the broken line (read alone, or rejected).
    assert sorted(o["index"] for o in dirty["outcomes"]) == list(range(len(rows) + 1))
    summary = dirty["summary"]
    assert sum(v for k, v in summary.items() if k != "requests") == len(rows) + 1
    after = _statuses(dirty)
    for external_id, outcome in _statuses(clean).items():
        assert after[external_id] == outcome


def test_plan_reads_within_the_same_limits(tmp_path: Path) -> None:
    limited = _config(tmp_path, "[input]\nmax_record_lines = 2\n")
    contacts = tmp_path / "in.csv"
    contacts.write_text(SPANNING)
    result = CliRunner().invoke(main, ["plan", "--config", limited, "--tenant", "t", str(contacts)])
    assert result.exit_code == 2, result.output
    assert "lines 2\u20133: a quoted field opened on line 2 does not close within" in " ".join(
        result.stderr.split()
    )
    planned = [json.loads(line) for line in result.stdout.splitlines()]
    writes = [p for p in planned if p["url"].endswith("/contacts")]
    sent = [c["external_id"] for p in writes for c in p["body"]["contacts"]]
    assert {"e1", "e2"} <= set(sent)


def test_the_unreadable_row_goes_to_failed_byte_for_byte(tmp_path: Path) -> None:
    broken = b'e2,"Ad\xe9,e2@example.com'  # Latin-1 bytes too, as a spreadsheet may save
    data = HEADER.encode() + b"e1,A,e1@example.com\r\n" + broken + b"\r\ne3,C,e3@example.com\r\n"
    failed = tmp_path / "failed.jsonl"
    result, report = upsert(tmp_path, data, "in.csv", "--failed", str(failed))
    assert result.exit_code == 2, result.output
    assert [o["status"] for o in sorted(report["outcomes"], key=lambda o: o["index"])] == [
        "created",
        "rejected",
        "created",
    ]
    assert failed.read_bytes() == broken + b"\n"
