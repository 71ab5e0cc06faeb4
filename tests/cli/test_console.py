"""What a user sees: exit codes, the end-of-run summary, help, and safe printing."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from contactsync._cli import main
from contactsync._records import read_jsonl

CONFIG = """
[tenants.t]
provider = "fake"
base_url = "emulator"
default_phone_region = "GB"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    "args",
    [
        ["upsert", "--config", "c.toml", "in.jsonl"],  # no --tenant
        ["upsert", "--nope"],
        ["no-such-command"],
        ["check"],  # no --config
    ],
)
def test_usage_errors_exit_1_not_the_some_failed_code(args: list[str]) -> None:
    code, output = run(*args)
    assert code == 1, output
    assert "Error" in output


def test_help_shows_examples_exit_codes_and_option_help() -> None:
    code, output = run("--help")
    assert code == 0
    assert "Examples:" in output
    assert "Exit codes:" in output
    assert "130  interrupted" in output
    code, output = run("upsert", "--help")
    assert code == 0
    assert "--failed failed.jsonl" in output
    assert "2    some contacts were rejected or failed" in output
    assert "The TOML config file" in output
    assert "The tenant of the config" in output


def test_plan_exits_2_when_an_input_is_rejected(tmp_path: Path) -> None:
    config = write(tmp_path, "c.toml", CONFIG)
    good = write(tmp_path, "good.jsonl", '{"external_id": "a", "email": "a@example.com"}\n')
    assert run("plan", "--config", str(config), "--tenant", "t", str(good))[0] == 0
    bad = write(tmp_path, "bad.jsonl", '{"external_id": "a", "email": "nope"}\n')
    code, output = run("plan", "--config", str(config), "--tenant", "t", str(bad))
    assert code == 2
    assert "input 0 rejected: email:" in output
    assert "1 input(s) rejected" in output


@pytest.mark.parametrize("tenant", ["[/x]", "[bold]t", "a\nerror: fake line"])
def test_user_strings_are_printed_as_text(tmp_path: Path, tenant: str) -> None:
    config = write(tmp_path, "c.toml", CONFIG)
    code, output = run("upsert", "--config", str(config), "--tenant", tenant, "in.jsonl")
    assert code == 1
    lines = output.splitlines()
    assert len(lines) == 1, output  # a newline in the name cannot fake a second line
    assert tenant.replace("\n", "\\n") in lines[0]


def test_a_piped_message_is_not_wrapped(tmp_path: Path) -> None:
    config = write(tmp_path, "c.toml", CONFIG)
    missing = str(tmp_path / ("very_long_directory_name_" * 6) / "contacts_file_name.jsonl")
    code, output = run("upsert", "--config", str(config), "--tenant", "t", missing)
    assert code == 1
    assert output.splitlines() == [f"error: input file {missing} does not exist"]


def test_the_providers_table_is_not_cut_when_piped() -> None:
    code, output = run("providers")
    assert code == 0
    line = next(row for row in output.splitlines() if "gleantap" in row)
    assert "contactsync-gleantap" in line
    assert "…" not in output


def upsert_args(tmp_path: Path, text: str, *extra: str) -> list[str]:
    config = write(tmp_path, "c.toml", CONFIG + 'on_unsupported = "warn"\n')
    contacts = write(tmp_path, "in.jsonl", text)
    return ["upsert", "--config", str(config), "--tenant", "t", str(contacts), *extra]


MIXED = (
    '{"external_id": "a", "email": "a@example.com", "sms_status": "subscribed"}\n'
    '{"external_id": "b", "email": "b@"}\n'
    '{"external_id": "c", "email": "c@"}\n'
    '{"external_id": "d", "emial": "d@example.com"}\n'
)


def test_the_summary_lists_codes_with_counts_examples_and_warnings(tmp_path: Path) -> None:
    code, output = run(*upsert_args(tmp_path, MIXED))
    assert code == 2
    lines = output.splitlines()
    assert lines[0] == (
        "created 1, updated 0, written 0, unchanged 0, skipped 0, rejected 3, failed 0, requests 2, warnings 1"
    )
    assert lines[1] == "not written, by error code:"
    # Most frequent first, each with its first example.
    assert lines[2].split()[:2] == ["invalid_contact", "3"]
    assert "e.g. input 1: email:" in lines[2]
    assert lines[3].startswith("warnings: 1, e.g. input 0: fake cannot express sms_status")


def test_quiet_prints_nothing_but_keeps_the_exit_code(tmp_path: Path) -> None:
    code, output = run("--quiet", *upsert_args(tmp_path, MIXED))
    assert (code, output) == (2, "")


def test_verbose_tells_each_contact_not_written_as_it_happens(tmp_path: Path) -> None:
    code, output = run("-v", *upsert_args(tmp_path, MIXED))
    assert code == 2
    assert "input 3 rejected (invalid_contact): emial: unknown field" in output
    assert "input 0 warning: fake cannot express sms_status" in output
    assert logging.getLogger("contactsync").level == logging.NOTSET  # put back after


def test_quiet_and_verbose_exclude_each_other() -> None:
    assert run("-q", "-v", "providers")[0] == 1


def test_failed_lines_carry_index_and_reason_and_are_read_again(tmp_path: Path) -> None:
    failed = tmp_path / "failed.jsonl"
    run(*upsert_args(tmp_path, MIXED, "--failed", str(failed)))
    lines = [json.loads(line) for line in failed.read_text().splitlines()]
    assert sorted(line["_contactsync"]["index"] for line in lines) == [1, 2, 3]
    assert {line["_contactsync"]["error"]["code"] for line in lines} == {"invalid_contact"}
    # The reader ignores the annotation: only the real problem is reported again.
    again = tmp_path / "again.jsonl"
    code, output = run(*upsert_args(tmp_path, failed.read_text(), "--failed", str(again)))
    assert code == 2
    assert "_contactsync" not in output.split("e.g.")[1]
    with again.open("rb") as stream:
        assert [line.error for line in read_jsonl(stream)] == [None, None, None]
    reread = [json.loads(line) for line in again.read_text().splitlines()]
    # Annotated afresh (the old annotation replaced, not nested).
    assert all(set(line["_contactsync"]) == {"index", "error"} for line in reread)
    assert sorted(line["_contactsync"]["index"] for line in reread) == [0, 1, 2]


def test_emulate_draws_only_the_fault_kinds_asked_for() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "from contactsync._cli import main; main()", "emulate",
         "yespo", "--fail-rate", "1", "--faults", "503", "--faults", "429", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        codes = {httpx.get(f"{url}/api/v1/groups", timeout=10).status_code for _ in range(12)}
        counted = httpx.get(f"{url}/__emulator__/faults", timeout=10).json()
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert codes <= {429, 503}
    assert {kind for kind, n in counted.items() if n} <= {"429", "503"}
    assert sum(counted.values()) == 12


def test_emulate_refuses_an_unknown_fault_kind() -> None:
    code, output = run("emulate", "yespo", "--faults", "teapot")
    assert code == 1
    assert "teapot" in output


def test_the_progress_bar_shows_rate_not_written_and_time_left() -> None:
    from contactsync._cli import _progress  # noqa: PLC0415 - the private bar builder

    times = iter(float(n) for n in range(100))
    bar = _progress(10)
    bar.get_time = lambda: next(times)
    task_id = bar.add_task("upsert", total=10, failed=0)
    for failed in (0, 1, 1, 2):
        bar.update(task_id, advance=1, failed=failed)
    (task,) = bar.tasks
    cells = [str(column.render(task)) for column in bar.columns if hasattr(column, "render")]
    text = " ".join(cells)
    assert "4/10" in text
    assert "1/s" in text  # four contacts in four (fake) seconds
    assert "2 not written" in text
    assert "eta" in text
