"""No credential in any cassette of the repository, and the scan catches a planted one."""

from __future__ import annotations

import shutil
from pathlib import Path

from contactsync.testing import scan_cassettes

ROOT = Path(__file__).resolve().parents[1]
CASSETTE_DIRS = [ROOT / "cassettes", ROOT / "examples" / "app_tests" / "cassettes"]
# Credentials the example app's tests use (examples/app_tests/conftest.py).
APP_SECRETS = ["test-yespo-key", "test-ivvy-key", "test-ivvy-secret"]


def test_repository_cassettes_hold_no_credential() -> None:
    files = [p for d in CASSETTE_DIRS for p in d.rglob("*.yaml")]
    assert len(files) >= 6
    assert scan_cassettes(CASSETTE_DIRS, APP_SECRETS) == []


def test_a_planted_credential_value_is_found(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "cassettes", tmp_path / "c")
    target = tmp_path / "c" / "gleantap" / "upsert_twice.yaml"
    target.write_text(target.read_text().replace("demo-app", "gleantap-demo-secret", 1))
    findings = scan_cassettes([tmp_path / "c"])
    assert [(f.path.name, f.problem) for f in findings] == [
        ("upsert_twice.yaml", "holds a credential value")
    ]


def test_an_unscrubbed_auth_header_is_found(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "cassettes", tmp_path / "c")
    target = tmp_path / "c" / "ivvy" / "upsert_twice.yaml"
    text = target.read_text()
    target.write_text(
        text.replace("- REDACTED", "- IWS somekey:0123456789abcdef0123456789abcdef01234567", 1)
    )
    findings = scan_cassettes([tmp_path / "c"])
    assert [f.problem for f in findings] == ["request header x-api-authorization is not scrubbed"]


def test_a_secret_given_by_the_app_is_found(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "app_tests" / "cassettes", tmp_path / "c")
    target = next((tmp_path / "c").glob("*.yaml"))
    target.write_text(target.read_text() + "\n# test-ivvy-secret\n")
    assert len(scan_cassettes([tmp_path / "c"], APP_SECRETS)) == 1
