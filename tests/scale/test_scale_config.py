"""The ``[scale]`` table: defaults, env: URLs, errors naming the key, no secret shown."""

from __future__ import annotations

import pytest

from contactsync import ConfigError, load_config
from contactsync._scale._worker import check_distributed_state


def test_backend_and_limiter_default_to_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "redis://:s3cret-pass@127.0.0.1:6379/0")
    config = load_config({"scale": {"broker": "env:BROKER_URL"}, "tenants": {}})
    assert config.scale is not None
    assert config.scale.backend_url.reveal() == "redis://:s3cret-pass@127.0.0.1:6379/0"
    assert config.scale.redis_url.reveal() == "redis://:s3cret-pass@127.0.0.1:6379/0"
    assert "s3cret" not in repr(config)
    other = load_config(
        {
            "scale": {
                "broker": "redis://127.0.0.1:1/0",
                "result_backend": "redis://127.0.0.1:2/0",
                "redis": "redis://127.0.0.1:3/0",
            },
            "tenants": {},
        }
    )
    assert other.scale is not None
    assert other.scale.backend_url.reveal().endswith(":2/0")
    assert other.scale.redis_url.reveal().endswith(":3/0")


@pytest.mark.parametrize(
    ("scale", "where"),
    [
        ({}, "scale.broker"),
        ({"broker": "redis://h/0", "chunk_size": 0}, "scale.chunk_size"),
        ({"broker": "redis://h/0", "shards": 0}, "scale.shards"),
        ({"broker": "redis://h/0", "visibility_timeout": 1}, "scale.visibility_timeout"),
        ({"broker": "redis://h/0", "brokr": "x"}, "scale.brokr"),
    ],
)
def test_errors_name_the_key(scale: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"scale": scale, "tenants": {}})
    assert caught.value.path == where


def test_a_password_with_trailing_whitespace_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BROKER_URL", "redis://:hunter2-secret@127.0.0.1/0\r")
    with pytest.raises(ConfigError) as caught:
        load_config({"scale": {"broker": "env:BROKER_URL"}, "tenants": {}})
    assert caught.value.path == "scale.broker"
    assert "hunter2" not in str(caught.value)


def test_a_distributed_run_needs_a_shared_postgresql_state() -> None:
    scale = {"broker": "redis://127.0.0.1/0"}
    with pytest.raises(ValueError, match=r"\[scale\]"):
        check_distributed_state(load_config({"tenants": {}}))
    with pytest.raises(ValueError, match=r"\[state\] url"):
        check_distributed_state(load_config({"scale": scale, "tenants": {}}))
    sqlite = {"scale": scale, "state": {"url": "sqlite:///x.db"}, "tenants": {}}
    with pytest.raises(ValueError, match="PostgreSQL"):
        check_distributed_state(load_config(sqlite))
    shared = {"scale": scale, "state": {"url": "postgresql://u:p@h/db"}, "tenants": {}}
    assert check_distributed_state(load_config(shared)) == "postgresql://u:p@h/db"
