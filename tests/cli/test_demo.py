"""``contactsync demo`` needs no checkout: its data ships with the package."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from contactsync._cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no examples/ here
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert result.output.count("contacts stored on the emulator: 5") == 3


@pytest.mark.parametrize("name", ["contacts.jsonl", "demo.toml"])
def test_the_shipped_demo_data_is_the_examples_data(name: str) -> None:
    shipped = importlib.resources.files("contactsync._demo") / name
    assert shipped.read_bytes() == (ROOT / "examples" / name).read_bytes()
