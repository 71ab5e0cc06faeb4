"""A platform that echoes request headers back: no credential, Basic token or
signature reaches an outcome, the report, the failed file, a log line, a plan or a
cassette."""

from __future__ import annotations

import base64
import json
import logging
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from contactsync import Client
from contactsync._cli import main
from contactsync.provider import default_registry
from contactsync.testing import Emulator, EmulatorApp, make_vcr, serve_in_thread
from tests.reliability.scenarios import SCENARIOS, Scenario, people

IDS = [s.name for s in SCENARIOS]


class Echo(Emulator):
    """Refuses everything with 400, echoing the request's headers and body; remembers
    every secret header value it was sent."""

    def __init__(self, secret_headers: frozenset[str]) -> None:
        self.secret_headers = secret_headers
        self.seen: set[str] = set()
        self._lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            for name, value in request.headers.items():
                if name.lower() in self.secret_headers:
                    self.seen.add(value)
        echoed = {"error": "bad request", "headers": dict(request.headers)}
        return httpx.Response(400, json=echoed, headers={"X-Echo": str(dict(request.headers))})

    def contacts(self) -> list[dict[str, Any]]:
        return []

    def reset(self) -> None:
        pass


def _toml(table: dict[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{k} = {json.dumps(v)}" for k, v in scalars.items()]
    for key, sub in tables.items():
        lines.append(_toml(sub, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines) + "\n"


def _forms(values: set[str]) -> set[str]:
    """Each value, and the parts a signature header is made of (``IWS key:sig``)."""
    forms = set()
    for value in values:
        forms.add(value)
        for part in value.replace(":", " ").split():
            if len(part) >= 8:
                forms.add(part)
        if value.startswith("Basic "):
            forms.add(base64.b64decode(value[6:]).decode().split(":", 1)[1])
    return forms


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_echoed_credentials_leave_no_trace(
    scenario: Scenario, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    provider = default_registry.get(scenario.tenant["provider"])
    secret_headers = frozenset(h.lower() for h in provider.secret_headers)
    echo = Echo(secret_headers)
    app = EmulatorApp(echo)
    records = people(5)
    traces: list[str] = []

    caplog.set_level(logging.DEBUG)
    config = scenario.config(max_retries=0)
    with Client(config, "r", emulator=app, sleep=lambda s: None) as client:
        outcomes = list(client.upsert_many(records))
        traces += [json.dumps(o.to_json()) + repr(o) for o in outcomes]
        traces += [json.dumps(p.to_json()) for p in client.plan(records) if hasattr(p, "url")]
    traces += [record.getMessage() for record in caplog.records]

    recorder = make_vcr(tmp_path / "cassettes", record_mode="all")
    with (
        recorder.use_cassette("echo.yaml"),
        Client(config, "r", emulator=app, sleep=lambda s: None) as client,
    ):
        list(client.upsert_many(records))
    traces.append((tmp_path / "cassettes" / "echo.yaml").read_text())

    server, url = serve_in_thread(app)
    try:
        (tmp_path / "c.toml").write_text(_toml(config))
        source = tmp_path / "in.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in records))
        common = ["--config", str(tmp_path / "c.toml"), "--tenant", "r", "--base-url", url]
        result = CliRunner().invoke(main, ["upsert", *common, str(source),
                                           "--report", str(tmp_path / "report.json"),
                                           "--failed", str(tmp_path / "failed.jsonl")])  # fmt: skip
        planned = CliRunner().invoke(main, ["plan", *common, str(source)])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 2, result.output
    traces += [result.output, planned.output]
    traces += [(tmp_path / name).read_text() for name in ("report.json", "failed.jsonl")]

    assert echo.seen, "no credential was sent at all"
    assert all(o.status.value == "failed" for o in outcomes)
    everything = "\n".join(traces)
    for form in _forms(echo.seen):
        assert form not in everything, f"{form[:6]}… leaked"
