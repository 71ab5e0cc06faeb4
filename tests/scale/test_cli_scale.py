"""The scale-out commands refuse, with exit code 1 and the reason, what cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from contactsync._cli import main

TENANT = '[tenants.shop]\nprovider = "yespo"\nbase_url = "emulator"\n'


def _invoke(tmp_path: Path, config: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "c.toml"
    path.write_text(config)
    source = tmp_path / "in.jsonl"
    source.write_text('{"external_id": "a", "email": "a@example.com"}\n')
    result = CliRunner().invoke(
        main, [a.replace("CONFIG", str(path)).replace("INPUT", str(source)) for a in args]
    )
    return result.exit_code, result.output


UPSERT = ("upsert", "--config", "CONFIG", "--tenant", "shop", "--distributed", "INPUT")


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (TENANT, "[scale]"),
        ('[scale]\nbroker = "redis://127.0.0.1:1/0"\n' + TENANT, "[state] url"),
        (
            '[scale]\nbroker = "redis://127.0.0.1:1/0"\n[state]\nurl = "sqlite:///x.db"\n' + TENANT,
            "PostgreSQL",
        ),
    ],
)
def test_upsert_distributed_needs_scale_and_a_shared_state(
    tmp_path: Path, config: str, says: str
) -> None:
    code, output = _invoke(tmp_path, config, *UPSERT)
    assert code == 1
    assert says in output


def test_upsert_distributed_refuses_command_line_overrides(tmp_path: Path) -> None:
    code, output = _invoke(tmp_path, TENANT, *UPSERT, "--state", "sqlite:///y.db")
    assert code == 1
    assert "--distributed" in output


def test_worker_needs_a_scale_table(tmp_path: Path) -> None:
    code, output = _invoke(tmp_path, TENANT, "worker", "--config", "CONFIG")
    assert code == 1
    assert "[scale]" in output
