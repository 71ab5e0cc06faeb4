"""The quickstart's examples, extracted from docs/quickstart.md and run as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contactsync._cli import main

QUICKSTART = Path(__file__).resolve().parents[2] / "docs" / "quickstart.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(QUICKSTART.read_text()) if lang == language]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (config,) = blocks("toml")
    (tmp_path / "contactsync.toml").write_text(config)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_quickstart_config_checks_and_lists_fields(workdir: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--config", "contactsync.toml", "--online"])
    assert result.exit_code == 0, result.output
    assert "ok: 1 tenant(s): acme" in result.output
    result = CliRunner().invoke(
        main, ["fields", "--config", "contactsync.toml", "--tenant", "acme"]
    )
    assert result.exit_code == 0, result.output
    assert 'visits = { id = 1002, type = "int" }' in result.output


def test_the_quickstart_python_runs_as_written(workdir: Path) -> None:
    code = "\n\n".join(blocks("python"))
    namespace: dict[str, Any] = {"__name__": "quickstart"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, str(QUICKSTART), "exec"), namespace)
    contact_outcome_line = printed.getvalue().splitlines()[0]
    assert contact_outcome_line.split()[0] in ("created", "updated", "written")
    run = namespace["run"]
    assert (run.summary.total, run.summary.rejected, run.summary.failed) == (3, 0, 0)
    assert namespace["done"] == 3
    # The typed field went out as the platform's number.
    assert namespace["contact"].custom_fields["visits"] == "12"
