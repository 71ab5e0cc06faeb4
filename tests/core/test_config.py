from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contactsync import ConfigError, Secret, load_config
from tests.fakeprovider import tenant_config


def resolve(data: dict[str, Any], name: str = "t") -> Any:
    return load_config(data).tenant(name)


def error_of(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        resolve(data)
    return info.value


def test_full_tenant_resolves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_KEY", "k-123456")
    tenant = resolve(
        tenant_config(credentials={"api_key": "env:ACME_KEY"}, options={"list_name": "x"})
    )
    assert tenant.provider == "fake"
    assert tenant.credentials.api_key == Secret("k-123456")
    assert tenant.options.list_name == "x"
    assert tenant.default_phone_region == "GB"
    assert tenant.uses_emulator


@pytest.mark.parametrize(
    ("overrides", "path", "fragment"),
    [
        (
            {"credentials": {"api_key": "env:ACME_MISSING"}},
            "tenants.t.credentials.api_key",
            "environment variable ACME_MISSING is not set",
        ),
        (
            {"credentials": {}, "base_url": "https://fake.test"},
            "tenants.t.credentials.api_key",
            "required key is missing",
        ),
        (
            {"credentials": {"api_key": "key-12345", "other": "x"}},
            "tenants.t.credentials.other",
            "unknown key",
        ),
        ({"options": {"lst": "x"}}, "tenants.t.options.lst", "unknown key"),
        ({"options": {"list_name": 3}}, "tenants.t.options.list_name", "must be a string"),
        ({"provider": "nope"}, "tenants.t.provider", "no provider named 'nope'"),
        ({"base_url": "http://example.com"}, "tenants.t.base_url", "loopback"),
        ({"base_url": "ftp://example.com"}, "tenants.t.base_url", "https://"),
        ({"default_phone_region": "XX"}, "tenants.t.default_phone_region", "region"),
        (
            {"on_unsupported": "ignore"},
            "tenants.t.on_unsupported",
            "must be one of 'error', 'warn'",
        ),
        ({"custom_fields": {"loyalty": 1.5}}, "tenants.t.custom_fields.loyalty", "platform id"),
        ({"http": {"timeout": "slow"}}, "tenants.t.http.timeout", "must be a number"),
        ({"http": {"concurrency": 0}}, "tenants.t.http.concurrency", "at least 1"),
        ({"http": {"retries": 3}}, "tenants.t.http.retries", "unknown key"),
        ({"colour": "red"}, "tenants.t.colour", "unknown key"),
    ],
)
def test_config_errors_give_their_path(overrides: dict[str, Any], path: str, fragment: str) -> None:
    error = error_of(tenant_config(**overrides))
    assert error.path == path
    assert fragment in error.problem
    assert str(error).startswith(f"{path}: ")


def test_missing_provider_key_has_a_path() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"tenants": {"acme": {"base_url": "emulator"}}})
    assert info.value.path == "tenants.acme.provider"


def test_unknown_tenant() -> None:
    with pytest.raises(ConfigError, match=r"tenants\.nobody: no such tenant \(configured: t\)"):
        resolve(tenant_config(), "nobody")


def test_loopback_http_and_https_are_accepted() -> None:
    assert (
        resolve(tenant_config(base_url="http://127.0.0.1:8080/")).base_url
        == "http://127.0.0.1:8080"
    )
    assert (
        resolve(tenant_config(base_url="https://api.example.com")).base_url
        == "https://api.example.com"
    )


def test_emulator_tenant_may_omit_demo_credentials() -> None:
    tenant = resolve(tenant_config(credentials={}, base_url="emulator"))
    assert tenant.credentials.api_key.reveal() == "fake-demo-key"


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[tenants.acme]\nprovider = "fake"\nbase_url = "emulator"\n'
        '[tenants.acme.credentials]\napi_key = "abc-12345"\n[tenants.acme.groups]\nvip = 3\n'
    )
    assert load_config(path).tenant("acme").groups == {"vip": 3}
    path.write_text("[tenants.acme\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
