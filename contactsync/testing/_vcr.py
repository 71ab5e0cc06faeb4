"""vcrpy configuration: credentials scrubbed, bodies compared by meaning."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._registry import Registry, default_registry
from .._secret import Scrubber

if TYPE_CHECKING:
    import vcr

REDACTED = "REDACTED"
# Always scrubbed, whatever the installed providers declare.
_ALWAYS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def secret_headers(registry: Registry | None = None) -> frozenset[str]:
    """Lower-case names of every header an installed provider marks as secret."""
    registry = registry or default_registry
    names = set(_ALWAYS)
    for name in registry.names():
        names |= registry.get(name).secret_headers
    return frozenset(names)


def _declared(registry: Registry | None, attribute: str) -> frozenset[str]:
    registry = registry or default_registry
    found: set[str] = set()
    for name in registry.names():
        found |= getattr(registry.get(name), attribute)
    return frozenset(found)


def _scrub_json(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if k in keys else _scrub_json(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v, keys) for v in value]
    return value


def _scrub_body(body: Any, keys: frozenset[str]) -> Any:
    parsed = _parsed(body)
    if not keys or not isinstance(parsed, dict | list):
        return body
    scrubbed = json.dumps(_scrub_json(parsed, keys), separators=(",", ":")).encode()
    return scrubbed if isinstance(body, bytes) else scrubbed.decode()


# The secret header values of the request being recorded, for its response: vcrpy
# records a request and then its response in one call, in the thread that sent them.
_recording = threading.local()


def _forms(value: str) -> set[str]:
    """A credential header value and what it is made of (``Basic <token>`` and its
    password, ``IWS key:signature`` and both parts), for finding echoes of it."""
    forms = {value}
    for part in value.replace(":", " ").split():
        if len(part) >= 8:
            forms.add(part)
    if value.startswith("Basic "):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            forms.add(base64.b64decode(value[6:]).decode().split(":", 1)[-1])
    return {form for form in forms if len(form) >= 8}


def _request_hook(headers: frozenset[str], keys: frozenset[str]) -> Any:
    def before_record_request(request: Any) -> Any:
        seen: set[str] = set()
        for name in list(request.headers):
            if name.lower() in headers:
                value = request.headers[name]
                if isinstance(value, str) and value != REDACTED:
                    seen |= _forms(value)
                request.headers[name] = REDACTED
        _recording.secrets = seen
        if keys and request.body:
            request.body = _scrub_body(request.body, keys)
        return request

    return before_record_request


@functools.lru_cache(maxsize=64)
def _echo_scrubber(secrets: frozenset[str]) -> Scrubber:
    return Scrubber(secrets, mask=REDACTED)


def _scrub_echoes(text: Any, secrets: set[str]) -> Any:
    """``text`` with each of ``secrets`` replaced in every form a platform may echo it
    in (JSON-, HTML-, URL-escaped, base64…: see :class:`Scrubber`)."""
    if not secrets or not isinstance(text, str | bytes):
        return text
    scrubber = _echo_scrubber(frozenset(secrets))
    if isinstance(text, bytes):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:  # not text: only the raw values can be found in it
            for secret in sorted(secrets, key=len, reverse=True):
                text = text.replace(secret.encode(), REDACTED.encode())
            return text
        scrubbed = scrubber.scrub(decoded)
        return text if scrubbed == decoded else scrubbed.encode("utf-8")
    return scrubber.scrub(text)


def _response_hook(headers: frozenset[str], keys: frozenset[str]) -> Any:
    def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
        # Idempotent: replay runs it again on what was recorded.
        secrets: set[str] = getattr(_recording, "secrets", set())
        recorded = response.get("headers") or {}
        for name in list(recorded):
            if name.lower() in headers:
                recorded[name] = [REDACTED]
            else:
                recorded[name] = [_scrub_echoes(v, secrets) for v in recorded[name]]
        body = response.get("body") or {}
        if body.get("string"):
            # A platform that echoes the request puts its credentials in the body.
            body["string"] = _scrub_echoes(body["string"], secrets)
            if keys:
                body["string"] = _scrub_body(body["string"], keys)
        return response

    return before_record_response


def _parsed(body: Any) -> Any:
    if body is None or body in {b"", ""}:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return body


def json_body_matcher(one: Any, other: Any) -> None:
    """vcrpy matcher: bodies equal as JSON (key order ignored), else byte for byte."""
    if _parsed(one.body) != _parsed(other.body):
        raise AssertionError("request bodies differ")


def vcr_config(registry: Registry | None = None, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``vcr.VCR`` (or pytest-recording's ``vcr_config`` fixture)."""
    headers = secret_headers(registry)
    keys = _declared(registry, "secret_body_keys")
    config: dict[str, Any] = {
        # Replacing values (not dropping them) keeps scrubbing idempotent: vcrpy runs
        # the filters again on replay.
        # Secret headers are replaced by the request hook, which first notes their
        # values so that echoes of them in the response are scrubbed too.
        "filter_query_parameters": [
            (name, REDACTED) for name in sorted(_declared(registry, "secret_query_params"))
        ],
        "before_record_request": _request_hook(headers, keys),
        "before_record_response": _response_hook(headers, keys),
        "match_on": ["method", "scheme", "host", "port", "path", "query", "json_body"],
        "decode_compressed_response": True,
        "record_mode": "none",
    }
    config.update(overrides)
    return config


def make_vcr(
    cassette_dir: str | Path | None = None, registry: Registry | None = None, **overrides: Any
) -> vcr.VCR:
    """A ``vcr.VCR`` with :func:`vcr_config` and the JSON body matcher registered."""
    import vcr  # noqa: PLC0415 - the testing extra; the library itself never needs it

    config = vcr_config(registry, **overrides)
    if cassette_dir is not None:
        config["cassette_library_dir"] = str(cassette_dir)
    recorder = vcr.VCR(**config)
    recorder.register_matcher("json_body", json_body_matcher)
    return recorder
