"""A recognisable fake secret must not appear in any repr, log, exception, plan or report."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from contactsync import Client, ConfigError, Secret, load_config
from contactsync._cli import main
from tests.fakeprovider import FakeEmulator, tenant_config

SECRET = "sk-FAKE-SECRET-8c1f0e"


def test_secret_repr_str_and_format_are_masked() -> None:
    secret = Secret(SECRET)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert SECRET not in text
    assert secret.reveal() == SECRET


def test_tenant_and_client_reprs_hide_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KEY", SECRET)
    config = load_config(tenant_config(credentials={"api_key": "env:FAKE_KEY"}))
    tenant = config.tenant("t")
    assert SECRET not in repr(tenant)
    assert SECRET not in repr(tenant.credentials)
    assert SECRET not in repr(config)
    inline = load_config(tenant_config(credentials={"api_key": SECRET}))
    assert SECRET not in repr(inline)
    assert SECRET not in repr(inline.tenant("t"))


def test_config_error_never_echoes_a_secret_value() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tenant_config(credentials={"api_key": SECRET, "spare": SECRET})).tenant("t")
    assert SECRET not in str(info.value)


def test_logs_exceptions_plan_and_outcomes_hide_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = tenant_config(
        base_url="https://fake.test", credentials={"api_key": SECRET}, http={"max_retries": 1}
    )
    emulator = FakeEmulator({"another-key"})  # every request is refused: 401

    def refuse_or_fail(request: httpx.Request) -> httpx.Response:
        request.read()
        if request.url.path == "/lookup":
            raise httpx.ConnectError(f"cannot reach {request.url}", request=request)
        return emulator.handle(request)

    texts: list[str] = []
    with Client(
        config, "t", transport=httpx.MockTransport(refuse_or_fail), sleep=lambda s: None
    ) as client:
        outcomes = list(client.upsert_many([{"external_id": "x", "email": "x@example.com"}]))
        texts += [repr(o) for o in outcomes] + [json.dumps(o.to_json()) for o in outcomes]
        texts += [
            json.dumps(p.to_json())
            for p in client.plan([{"email": "y@example.com"}])
            if hasattr(p, "to_json") and not hasattr(p, "status")
        ]
        texts.append(repr(client.tenant))
        texts.append(repr(client.provider.__dict__))
    texts += [r.getMessage() for r in caplog.records]
    assert outcomes[0].error is not None
    assert outcomes[0].error.code == "request_failed"
    assert any("***" in t for t in texts)
    for text in texts:
        assert SECRET not in text


def test_cli_report_failed_file_and_output_hide_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KEY", SECRET)
    config = tmp_path / "c.toml"
    config.write_text(
        '[tenants.t]\nprovider = "fake"\nbase_url = "emulator"\n'
        '[tenants.t.credentials]\napi_key = "env:FAKE_KEY"\n'
    )
    contacts = tmp_path / "in.jsonl"
    contacts.write_text('{"external_id": "a", "email": "a@example.com"}\n{"email": "bad"}\n')
    runner = CliRunner()
    results: list[Any] = [
        runner.invoke(
            main,
            [
                "upsert",
                "--config",
                str(config),
                "--tenant",
                "t",
                str(contacts),
                "--report",
                str(tmp_path / "r.json"),
                "--failed",
                str(tmp_path / "f.jsonl"),
            ],
        ),
        runner.invoke(main, ["plan", "--config", str(config), "--tenant", "t", str(contacts)]),
        runner.invoke(main, ["check", "--config", str(config)]),
    ]
    assert [r.exit_code for r in results] == [2, 2, 0]  # plan: an input is rejected
    assert '"x-key": "***"' in results[1].output
    for text in [r.output for r in results] + [
        (tmp_path / "r.json").read_text(),
        (tmp_path / "f.jsonl").read_text(),
    ]:
        assert SECRET not in text
