"""A platform that echoes request headers back: no credential, Basic token or
signature reaches an outcome, the report, the failed file, a log line, a plan or a
cassette."""

from __future__ import annotations

import base64
import html
import http.server
import json
import logging
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from contactsync import Client, ContactsyncError
from contactsync._cli import main
from contactsync.provider import default_registry
from contactsync.testing import Emulator, EmulatorApp, make_vcr, serve_in_thread
from tests.reliability.echo_forms import ENCODERS, every_form
from tests.reliability.echo_forms import secrets as echo_secrets
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
        headers = dict(request.headers)
        # As JSON, as PHP's json_encode writes it ("/" as "\/") and HTML-escaped.
        php = json.dumps(headers).replace("/", "\\/")
        page = html.escape(str(headers))
        body = f'{{"error": "bad request", "headers": {json.dumps(headers)}, "php": {php}, '
        body += f'"html": "{page}"}}'
        return httpx.Response(
            400,
            content=body.encode(),
            headers={"Content-Type": "application/json", "X-Echo": str(headers)},
        )

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
    escaped = ("json_php_slash", "html", "json_u_lower")
    return forms | {ENCODERS[name](form) for form in forms for name in escaped}


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


# -- every form: a loopback platform echoes the secret JSON-, HTML-, URL- and
# base64-encoded; the outputs are scanned for each form, without the scrubber -----------


class _FormEcho(http.server.BaseHTTPRequestHandler):
    """Answers everything with 400 and a body, written by hand as PHP or a template
    would, holding every request header and the tenant's secret in every form."""

    server: _EchoServer

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        secret = self.server.secret
        # A padding first, so that a message keeping the start of the body cuts the
        # first echo in the middle (Gleantap's keeps 500 characters).
        fields = ['"status":"error"', f'"pad":"{"x" * self.server.pad}"']
        fields += [f'"{name}":"{form}"' for name, form in every_form(secret).items()]
        for header, value in self.headers.items():
            fields += [f'"{header} {name}":"{encode(value)}"' for name, encode in ENCODERS.items()]
        body = ("{" + ",".join(fields) + "}").encode("utf-8")
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _EchoServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    secret = ""
    status = 400
    pad = 0


@pytest.fixture(scope="module")
def form_echo() -> Iterator[_EchoServer]:
    server = _EchoServer(("127.0.0.1", 0), _FormEcho)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.status, server.pad = 400, 0
    server.shutdown()
    server.server_close()


class _Collect(logging.Handler):
    """Every record of the ``contactsync`` logger as a handler would write it (its
    traceback included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _credentials(scenario: Scenario) -> dict[str, str]:
    # Each credential field holds the secret (an env: reference keeps TOML escaping out).
    return dict.fromkeys(scenario.tenant["credentials"], "env:ECHOED_SECRET")


def _outputs(scenario: Scenario, secret: str, url: str, workdir: Path) -> list[str]:
    """Everything a user may see of one CLI run, a check and a library run against the
    echoing platform: files, stdout, stderr, log lines, outcomes' reprs and errors."""
    # No groups: a setup look-up refused would fail every contact before its own request.
    tenant = {**scenario.tenant, "credentials": _credentials(scenario), "groups": {}}
    config = {"tenants": {"r": {**tenant, "default_phone_region": "GB", "base_url": url,
                                "http": {"max_retries": 0, "backoff_base": 0.0}}}}  # fmt: skip
    (workdir / "c.toml").write_text(_toml(config))
    source = workdir / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in people(3)))
    report, failed = workdir / "report.json", workdir / "failed.jsonl"
    common = ["--config", str(workdir / "c.toml"), "--tenant", "r"]
    env = {"ECHOED_SECRET": secret}
    logs = _Collect()
    logging.getLogger("contactsync").addHandler(logs)
    try:
        runner = CliRunner()
        upsert = runner.invoke(main, ["-vv", "upsert", *common, str(source), "--report",
                                      str(report), "--failed", str(failed)], env=env)  # fmt: skip
        check = runner.invoke(main, ["-vv", "check", "--config", str(workdir / "c.toml"),
                                     "--online"], env=env)  # fmt: skip
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ECHOED_SECRET", secret)
            with Client(config, "r") as client:
                outcomes = list(client.upsert_many(people(2)))
                with pytest.raises(ContactsyncError) as refused:
                    client.check_credentials()
    finally:
        logging.getLogger("contactsync").removeHandler(logs)
    assert upsert.exit_code == 2, upsert.output
    assert check.exit_code == 1, check.output
    assert all(o.status.value == "failed" for o in outcomes)
    texts = [
        upsert.stdout,
        upsert.stderr,
        check.stdout,
        check.stderr,
        repr(refused.value),
        str(refused.value),
        *logs.lines,
    ]
    texts += [repr(o) + str(o.error) + json.dumps(o.to_json()) for o in outcomes]
    texts += [report.read_text(encoding="utf-8"), failed.read_text(encoding="utf-8")]
    return texts


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.name != "yespo-bulk"],
                         ids=[s.name for s in SCENARIOS if s.name != "yespo-bulk"])  # fmt: skip
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=echo_secrets)
def test_no_form_of_an_echoed_secret_reaches_any_output(
    scenario: Scenario, secret: str, form_echo: _EchoServer
) -> None:
    form_echo.secret = secret
    url = f"http://127.0.0.1:{form_echo.server_address[1]}"
    with tempfile.TemporaryDirectory() as workdir:
        everything = "\n".join(_outputs(scenario, secret, url, Path(workdir)))
    assert "***" in everything  # the echo was there, and masked
    for name, form in every_form(secret).items():
        assert form not in everything, f"the {name} form leaked"


@pytest.mark.parametrize(
    ("secret", "leaked"),
    [
        # The issue's reproductions: PHP's json_encode writes "/" as "\/"; an "&" comes
        # back as "&amp;" from an HTML template.
        ("gts/liveP0o9xQ2rT7wZ", "gts\\/liveP0o9xQ2rT7wZ"),
        ("ab&cd<ef>gh'ij", "ab&amp;cd&lt;ef&gt;gh&#x27;ij"),
    ],
)
def test_the_issue_echoes_reach_no_output(
    secret: str, leaked: str, form_echo: _EchoServer, tmp_path: Path
) -> None:
    form_echo.secret = secret
    url = f"http://127.0.0.1:{form_echo.server_address[1]}"
    gleantap = next(s for s in SCENARIOS if s.name == "gleantap")
    texts = _outputs(gleantap, secret, url, tmp_path)
    assert all(leaked not in text for text in texts)
    assert all(secret not in text for text in texts)


def test_an_echo_in_a_successful_response_is_masked_before_any_message_cuts_it(
    form_echo: _EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP 200 with an error inside (as Gleantap answers): the message keeps the first
    500 characters of the body, cutting the echoed secret; its detail keeps more."""
    secret = "gts/liveP0o9xQ2rT7wZ"
    form_echo.secret, form_echo.status, form_echo.pad = secret, 200, 461
    gleantap = next(s for s in SCENARIOS if s.name == "gleantap")
    url = f"http://127.0.0.1:{form_echo.server_address[1]}"
    tenant = {**gleantap.tenant, "credentials": _credentials(gleantap), "base_url": url,
              "default_phone_region": "GB", "http": {"max_retries": 0}}  # fmt: skip
    monkeypatch.setenv("ECHOED_SECRET", secret)
    try:
        with Client({"tenants": {"r": tenant}}, "r") as client:
            outcomes = list(client.upsert_many(people(2)))
    finally:
        form_echo.status, form_echo.pad = 400, 0
    assert outcomes
    assert all(o.status.value == "failed" for o in outcomes)
    for outcome in outcomes:
        text = repr(outcome) + json.dumps(outcome.to_json())
        assert "HTTP 200" in text
        assert secret[:5] not in text  # not even the part before the cut
        for name, form in every_form(secret).items():
            assert form not in text, f"the {name} form leaked"
