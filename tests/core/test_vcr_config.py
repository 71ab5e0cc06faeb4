"""vcr_config scrubs what providers declare, in requests and responses, idempotently."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contactsync import Client, Secret
from contactsync.provider import default_registry
from contactsync.testing import (
    REDACTED,
    EmulatorApp,
    json_body_matcher,
    json_response,
    make_vcr,
    vcr_config,
)
from tests.fakeprovider import FakeEmulator, FakeProvider, tenant_config

SECRET = "token-5bd1c0ffee"


class LeakyProvider(FakeProvider):
    name = "leaky"
    secret_body_keys = frozenset({"token"})
    secret_query_params = frozenset({"sig"})
    secret_headers = frozenset({"x-key", "x-session"})


class LeakyEmulator(FakeEmulator):
    def handle(self, request: httpx.Request) -> httpx.Response:
        response = super().handle(request)
        body = json.loads(response.content)
        body["token"] = SECRET
        return json_response(response.status_code, body, {"X-Session": SECRET})


@pytest.fixture
def leaky() -> Iterator[None]:
    default_registry.register(LeakyProvider)
    yield
    default_registry.unregister("leaky")


def test_recording_scrubs_headers_body_keys_and_query(tmp_path: Path, leaky: None) -> None:
    config = tenant_config(
        provider="leaky", base_url="https://fake.test", credentials={"api_key": SECRET}
    )
    app = EmulatorApp(LeakyEmulator({SECRET}))
    recorder = make_vcr(tmp_path, record_mode="all")
    with recorder.use_cassette("c.yaml"), Client(config, "t", emulator=app) as client:
        outcome = client.upsert({"external_id": "a", "email": "a@example.com"})
        # The client's own httpx client is async, on the client's loop.
        client._loop.run(
            client._http.post("/lookup?sig=" + SECRET, json={"keys": [], "token": SECRET})
        )
    assert outcome.ok
    text = (tmp_path / "c.yaml").read_text()
    assert SECRET not in text
    document = yaml.safe_load(text)
    first = document["interactions"][0]
    assert first["request"]["headers"]["x-key"] == [REDACTED]
    assert first["response"]["headers"]["x-session"] == [REDACTED]
    assert json.loads(first["response"]["body"]["string"])["token"] == REDACTED
    last = document["interactions"][-1]
    assert last["request"]["uri"].endswith(f"sig={REDACTED}")
    assert json.loads(last["request"]["body"])["token"] == REDACTED
    # Replay: the hooks run again on scrubbed data and the run still matches.
    with make_vcr(tmp_path).use_cassette("c.yaml"), Client(config, "t") as client:
        assert client.upsert({"external_id": "a", "email": "a@example.com"}).ok


def test_json_body_matcher_ignores_key_order() -> None:
    class Req:
        def __init__(self, body: Any) -> None:
            self.body = body

    json_body_matcher(Req(b'{"a": 1, "b": [1, 2]}'), Req('{"b":[1,2],"a":1}'))
    with pytest.raises(AssertionError):
        json_body_matcher(Req(b'{"a": 1}'), Req(b'{"a": 2}'))
    json_body_matcher(Req(b""), Req(None))
    assert Secret(SECRET) != SECRET


class _Recorded:
    """What vcrpy hands ``before_record_request``: headers and a body."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers
        self.body = b""


@pytest.mark.parametrize(
    "echo",
    [
        lambda s: s,
        lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),  # PHP's json_encode
        lambda s: "".join(f"\\u{ord(c):04X}" for c in s),
        lambda s: s.replace("&", "&amp;").replace("<", "&lt;"),
        lambda s: s.replace("/", "%2f").replace("&", "%26"),
    ],
    ids=["raw", "php-json", "json-unicode", "html", "percent"],
)
def test_a_cassette_masks_an_echoed_credential_in_every_form(echo: Any) -> None:
    secret = "gts/live&P0o9<xQ2"
    config = vcr_config(default_registry)
    request = _Recorded({"Authorization": f"Bearer {secret}"})
    config["before_record_request"](request)
    assert request.headers["Authorization"] == REDACTED
    body = f'{{"error": "key {echo(secret)} refused"}}'
    response = {"headers": {"X-Echo": [echo(secret)]}, "body": {"string": body.encode()}}
    recorded = config["before_record_response"](response)
    assert recorded["body"]["string"] == b'{"error": "key REDACTED refused"}'
    assert recorded["headers"]["X-Echo"] == [REDACTED]
