"""``fields`` / ``groups`` against each emulator, and ``check`` (all errors, --online)."""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from contactsync._cli import main
from contactsync._cli_check import ONLINE_RETRY_FOR, _quick
from contactsync._config import load_config
from contactsync.provider import default_registry
from contactsync.testing import EmulatorApp, serve_in_thread

CONFIG = """
[tenants.shop]
provider = "yespo"
base_url = "emulator"
[tenants.shop.custom_fields]
points = { id = 79814, type = "int" }
since = { id = 79815, type = "date" }
nickname = 79816
[tenants.shop.groups]
news = "Newsletter"
vip = "VIP buyers"

[tenants.venue]
provider = "ivvy"
base_url = "emulator"
[tenants.venue.custom_fields]
points = { id = 31, type = "int" }
since = { id = 32, type = "date" }
[tenants.venue.groups]
news = "Newsletter"
vip = 4

[tenants.gym]
provider = "gleantap"
base_url = "emulator"
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, result.output


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    return path


def snippet(output: str) -> str:
    return output[output.index("[tenants.") :]


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        (
            "shop",
            [
                'points = { id = 79814, type = "int" }  # points (NUMBER)',
                'since = { id = 79815, type = "date" }  # since (DATE)',
                "nickname = 79816  # nickname (TEXTFIELD)",
            ],
        ),
        (
            "venue",
            [
                'points = { id = 31, type = "int" }  # points (number)',
                'since = { id = 32, type = "date" }  # since (date)',
            ],
        ),
    ],
)
def test_fields_lists_the_emulated_accounts_fields_as_a_ready_table(
    config: Path, tenant: str, expected: list[str]
) -> None:
    code, output = run("fields", "--config", str(config), "--tenant", tenant)
    assert code == 0, output
    text = snippet(output)
    assert text.startswith(f"[tenants.{tenant}.custom_fields]\n")
    for line in expected:
        assert line in text.splitlines()
    # The table pastes into a config as it is, and that config resolves.
    pasted = tomllib.loads(text)["tenants"][tenant]["custom_fields"]
    assert pasted["points"] == {"id": 79814 if tenant == "shop" else 31, "type": "int"}
    base = {"provider": "yespo" if tenant == "shop" else "ivvy", "base_url": "emulator"}
    load_config({"tenants": {tenant: {**base, "custom_fields": pasted}}}).tenant(tenant)


def test_groups_lists_segments_and_subscription_groups(config: Path) -> None:
    code, output = run("groups", "--config", str(config), "--tenant", "shop")
    assert code == 0, output
    assert 'newsletter = "Newsletter"  # Newsletter (segment, Static)' in output
    assert 'vip_buyers = "VIP buyers"  # VIP buyers (segment, Static)' in output
    code, output = run("groups", "--config", str(config), "--tenant", "venue")
    assert code == 0, output
    groups = tomllib.loads(snippet(output))["tenants"]["venue"]["groups"]
    assert groups["vip"] == 4
    assert isinstance(groups["newsletter"], int)


@pytest.mark.parametrize("command", ["fields", "groups"])
def test_a_platform_without_a_documented_listing_says_so(config: Path, command: str) -> None:
    code, output = run(command, "--config", str(config), "--tenant", "gym")
    assert code == 1
    assert "gleantap: the platform documents no listing" in output


def test_check_online_accepts_good_credentials(config: Path) -> None:
    code, output = run("check", "--config", str(config), "--online")
    assert code == 0, output
    for tenant in ("gym", "shop", "venue"):
        assert f"tenants.{tenant}: the platform accepted the credentials" in output


@pytest.mark.parametrize("provider", ["yespo", "ivvy", "gleantap"])
def test_check_online_reports_refused_credentials(tmp_path: Path, provider: str) -> None:
    cls = default_registry.get(provider)
    server, url = serve_in_thread(EmulatorApp(cls.create_emulator()))
    wrong = "wrong-secret-value-123 "
    credentials = "\n".join(f'{key} = "{wrong}{key}"' for key in cls.demo_credentials)
    options = "\n".join(f'{key} = "{value}"' for key, value in cls.demo_options.items())
    path = tmp_path / "c.toml"
    path.write_text(
        f'[tenants.t]\nprovider = "{provider}"\nbase_url = "{url}"\n'
        f"[tenants.t.credentials]\n{credentials}\n[tenants.t.options]\n{options}\n"
    )
    try:
        code, output = run("check", "--config", str(path), "--online")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 1, output
    assert "error: tenants.t: auth_failed:" in output
    assert "wrong-secret-value" not in output


def test_check_reports_every_problem_at_once_and_names_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[tenants.a]\nprovider = "ivvy"\nbase_url = "https://api.example.test:99999"\n'
        'default_phone_region = "XX"\n'
        '[tenants.a.credentials]\napi_key = "env:S17_UNSET_1"\napi_secrt = "env:S17_UNSET_2"\n'
        '[tenants.b]\nprovider = "yespo"\n[tenants.b.credentials]\napi_key = "env:S17_UNSET_3"\n'
    )
    code, output = run("check", "--config", str(path))
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: tenants.a.default_phone_region: 'XX' is not a region phonenumbers knows "
        "(ISO 3166-1 alpha-2)",
        "error: tenants.a.credentials.api_key: environment variable S17_UNSET_1 is not set",
        "error: tenants.a.credentials.api_secret: required key is missing",
        "error: tenants.a.credentials.api_secrt: unknown key (did you mean api_secret?); "
        "valid keys: api_key, api_secret",
        "error: tenants.a.base_url: not a URL (Port out of range 0-65535)",
        "error: tenants.b.credentials.api_key: environment variable S17_UNSET_3 is not set",
    ]


def test_check_lists_every_problem_of_the_file_itself(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[tenants.a]\nprovider = "ivvy"\ncustom_feilds = {}\n[tenants.a.http]\ntimeout = inf\n'
        '[tenants.b]\nprovider = "yespo"\n[tenants.b.http]\nconcurrency = 0\n'
    )
    code, output = run("check", "--config", str(path))
    assert code == 1
    assert "error: tenants.a.http.timeout: must be a finite number" in output
    assert "error: tenants.a.custom_feilds: unknown key (did you mean custom_fields?)" in output
    assert "error: tenants.b.http.concurrency: must be at least 1" in output


def test_a_tenant_name_with_a_control_character_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[tenants."a\\nerror: b"]\nprovider = "yespo"\nbase_url = "emulator"\n')
    code, output = run("check", "--config", str(path))
    assert code == 1
    assert output.splitlines() == [
        "error: tenants.a\\nerror: b: a tenant name must not hold control characters"
    ]


def test_check_online_reports_a_platform_that_does_not_answer(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path / "c.toml"
    path.write_text(
        f'[tenants.t]\nprovider = "yespo"\nbase_url = "http://127.0.0.1:{port}"\n'
        '[tenants.t.credentials]\napi_key = "key-12345"\n[tenants.t.http]\nretry_for = 0\n'
    )
    code, output = run("check", "--config", str(path), "--online")
    assert code == 1
    assert "error: tenants.t: request_failed:" in output


def test_check_online_retries_for_seconds_not_minutes() -> None:
    config = load_config({"tenants": {"t": {"provider": "yespo", "base_url": "emulator"}}})
    assert config.tenants["t"].http.retry_for == 300
    assert _quick(config, "t").tenants["t"].http.retry_for == ONLINE_RETRY_FOR
