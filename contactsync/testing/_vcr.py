"""vcrpy configuration: credentials scrubbed, bodies compared by meaning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._registry import Registry, default_registry

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
    config: dict[str, Any] = {
        # Replacing the value (not dropping the header) keeps scrubbing idempotent:
        # vcrpy runs the filters again on replay.
        "filter_headers": [(name, REDACTED) for name in sorted(secret_headers(registry))],
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
