"""The [tenants.NAME.http] keys for retries, timeouts and the breaker."""

from __future__ import annotations

from typing import Any

import pytest

from contactsync import ConfigError, load_config
from contactsync._tenant import HttpSettings


def http(**keys: Any) -> HttpSettings:
    config = load_config({"tenants": {"t": {"provider": "x", "http": keys}}})
    return config.tenants["t"].http


def test_new_keys_are_read_from_config() -> None:
    settings = http(retry_for=120, attempt_timeout=20.5, breaker_after=30, max_retries=3)
    assert settings == HttpSettings(
        retry_for=120.0, attempt_timeout=20.5, breaker_after=30.0, max_retries=3
    )


@pytest.mark.parametrize(
    ("keys", "where", "problem"),
    [
        ({"retry_for": -1}, "tenants.t.http.retry_for", "must not be negative"),
        ({"attempt_timeout": 0}, "tenants.t.http.attempt_timeout", "must be positive"),
        ({"breaker_after": 0}, "tenants.t.http.breaker_after", "must be positive"),
        ({"max_retries": -1}, "tenants.t.http.max_retries", "must not be negative"),
        ({"max_retries": 1.5}, "tenants.t.http.max_retries", "integer"),
        ({"retry_for": "long"}, "tenants.t.http.retry_for", "must be a number"),
    ],
)
def test_bad_values_name_their_key(keys: dict[str, Any], where: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        http(**keys)
    assert info.value.path == where
    assert problem in info.value.problem


def test_retry_for_zero_is_allowed_and_means_no_resend() -> None:
    assert http(retry_for=0).retry_for == 0.0
