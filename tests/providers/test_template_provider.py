"""A fourth provider, added by its entry point alone, shows up everywhere.

The template folder (``examples/provider-template``) is installed here the way any
distribution is found: a ``.dist-info`` directory with its ``entry_points.txt`` on the
path, and its package importable. Nothing else in the repository learns its name, yet
it appears in ``contactsync providers``, the capability matrix, the demo and the
conformance suite (which it passes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "examples" / "provider-template"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("site")
    project = tomllib.loads((TEMPLATE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    points = project["entry-points"]["contactsync.providers"]
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n",
        encoding="utf-8",
    )
    lines = "".join(f"{name} = {target}\n" for name, target in points.items())
    (dist / "entry_points.txt").write_text(f"[contactsync.providers]\n{lines}", encoding="utf-8")
    path = [str(site), str(TEMPLATE), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_it_is_listed_by_providers(env: dict[str, str]) -> None:
    listed = json.loads(run(env, "-m", "contactsync", "providers", "--json"))
    assert listed["broken"] == []
    (template,) = [p for p in listed["providers"] if p["name"] == "template"]
    assert template["distribution"] == "contactsync-template"
    assert template["capabilities"]["fields"] == ["email", "external_id", "first_name", "last_name"]
    assert {"yespo", "ivvy", "gleantap"} <= {p["name"] for p in listed["providers"]}


def test_it_has_a_column_in_the_capability_matrix(env: dict[str, str]) -> None:
    matrix = run(env, "-m", "contactsync", "providers", "--markdown")
    rows = {
        cells[0]: cells[1:]
        for line in matrix.splitlines()
        if line.startswith("|") and not line.startswith("|---")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    column = rows[""].index("[Template](template.md)")
    assert rows["`email`"][column] == "yes"
    assert rows["`birth_date`"][column] == "—"
    assert rows["contacts per request (at most)"][column] == "1"


def test_it_runs_in_the_demo(env: dict[str, str]) -> None:
    out = run(env, "-m", "contactsync", "demo")
    assert "template (tenant demo-template, built-in emulator" in out


def test_it_passes_the_conformance_suite(env: dict[str, str]) -> None:
    out = run(
        env,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/providers/test_conformance.py",
        "-k",
        "TestTemplateConformance",
    )
    assert "6 passed" in out, out
