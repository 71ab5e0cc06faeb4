"""The CLI's --sync-mode (upsert and plan) and `plan --state`, which only reads the store."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from contactsync_yespo import DEMO_API_KEY as YESPO_KEY

from contactsync._cli import main
from contactsync._state import open_store
from tests.state.test_cli_state import CONFIG, _rows, _write

EMULATED = CONFIG.replace("[tenants.g]\n", '[tenants.g]\nbase_url = "emulator"\n', 1)


def _config(tmp_path: Path, extra: str = "") -> list[str]:
    config = tmp_path / "c.toml"
    config.write_text(EMULATED + extra)
    return ["--config", str(config), "--tenant", "g"]


def test_update_only_skips_what_does_not_exist_and_exits_0(tmp_path: Path) -> None:
    common = _config(tmp_path)
    source = _write(tmp_path / "in.jsonl", _rows(3))
    failed, report = tmp_path / "failed.jsonl", tmp_path / "report.json"
    args = ["upsert", *common, "--sync-mode", "update_only", str(source)]
    result = CliRunner().invoke(main, [*args, "--failed", str(failed), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "skipped 3" in result.output
    assert failed.read_text() == ""
    data = json.loads(report.read_text())
    assert list(data["summary"]) == [
        "created", "updated", "written", "unchanged", "skipped", "rejected", "failed", "requests"
    ]  # fmt: skip
    assert {o["status"] for o in data["outcomes"]} == {"skipped"}
    assert {o["reason"] for o in data["outcomes"]} == {"not_found"}


def test_a_mode_the_provider_cannot_honour_is_a_usage_error(tmp_path: Path) -> None:
    yespo = '\n[tenants.y]\nprovider = "yespo"\nbase_url = "emulator"\n'
    yespo += f'sync_mode = "create_only"\n[tenants.y.credentials]\napi_key = "{YESPO_KEY}"\n'
    common = _config(tmp_path, yespo)
    common[-1] = "y"
    source = _write(tmp_path / "in.jsonl", _rows(1))
    result = CliRunner().invoke(main, ["upsert", *common, str(source)])
    assert result.exit_code == 1
    assert "tenants.y.sync_mode" in result.output
    assert "cannot tell cheaply" in result.output
    again = CliRunner().invoke(main, ["plan", *common, "--sync-mode", "upsert", str(source)])
    assert again.exit_code == 0, again.output


def test_plan_reads_the_store_and_never_writes_it(tmp_path: Path, url: str) -> None:
    common = _config(tmp_path)
    rows = _rows(4)
    source = _write(tmp_path / "in.jsonl", rows)
    runner = CliRunner()
    assert runner.invoke(main, ["upsert", *common, "--state", url, str(source)]).exit_code == 0
    with open_store(url, read_only=True) as store:
        before = store.summary("g")
    rows[2]["last_name"] = "Changed"
    changed = _write(tmp_path / "changed.jsonl", rows)
    result = runner.invoke(main, ["plan", *common, "--state", url, str(changed)])
    assert result.exit_code == 0, result.output
    planned = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["contacts"] for p in planned] == [[2]]
    for n in (0, 1, 3):
        assert f"input {n} unchanged" in result.output
    skipped = runner.invoke(
        main, ["plan", *common, "--state", url, "--sync-mode", "create_only", str(changed)]
    )
    assert skipped.stdout == ""
    assert "input 2 skipped (exists)" in skipped.output
    with open_store(url, read_only=True) as store:
        assert store.summary("g") == before  # no run recorded, nothing marked


def test_plan_never_creates_a_store(tmp_path: Path) -> None:
    common = _config(tmp_path)
    source = _write(tmp_path / "in.jsonl", _rows(1))
    missing = tmp_path / "none" / "state.db"
    result = CliRunner().invoke(
        main, ["plan", *common, "--state", f"sqlite:///{missing}", str(source)]
    )
    assert result.exit_code == 1
    assert "no state store file" in result.output
    assert not missing.parent.exists()
