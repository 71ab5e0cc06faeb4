"""The pytest plugin is registered for every environment that installs contactsync,
so it must load without the ``testing`` extra (vcrpy, PyYAML)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Runs pytest in a child where importing the extra's packages fails, as it does in an
# environment that installed contactsync and a provider without ``[testing]``.
_BLOCKING_RUNNER = textwrap.dedent(
    """
    import importlib.abc, sys

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"yaml", "vcr"}:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    import pytest
    sys.exit(pytest.main(sys.argv[1:]))
    """
)


def test_unrelated_suite_runs_without_the_testing_extra(tmp_path: Path) -> None:
    (tmp_path / "test_unrelated.py").write_text("def test_sum():\n    assert 1 + 1 == 2\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKING_RUNNER, "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    # The plugin really was loaded (its option is there), it just needed nothing extra.
    helped = subprocess.run(
        [sys.executable, "-c", _BLOCKING_RUNNER, "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "--contactsync-record" in helped.stdout


def test_blocking_runner_really_blocks(tmp_path: Path) -> None:
    # Guard against a runner that blocks nothing (the test above would then prove nothing).
    (tmp_path / "test_needs_yaml.py").write_text("def test_yaml():\n    import yaml\n")
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKING_RUNNER, "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "No module named 'yaml'" in result.stdout
