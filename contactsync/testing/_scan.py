"""Scanning recorded cassettes for credentials that were not scrubbed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import attrs

from .._registry import Registry, default_registry
from ._vcr import REDACTED, secret_headers


@attrs.frozen
class Finding:
    path: Path
    problem: str


def known_secrets(registry: Registry | None = None) -> set[str]:
    """Every installed provider's documented demo credential values."""
    registry = registry or default_registry
    values: set[str] = set()
    for name in registry.names():
        values |= {v for v in registry.get(name).demo_credentials.values() if len(v) >= 6}
    return values


def scan_cassettes(
    roots: Iterable[Path], secrets: Iterable[str] = (), registry: Registry | None = None
) -> list[Finding]:
    """Findings for every ``*.yaml`` under ``roots`` that holds a credential value or a
    secret header whose value is not ``REDACTED``."""
    import yaml  # noqa: PLC0415 - the testing extra (vcrpy brings PyYAML)

    values = {s for s in secrets if s} | known_secrets(registry)
    headers = secret_headers(registry)
    findings: list[Finding] = []
    for root in roots:
        for path in sorted(Path(root).rglob("*.yaml")):
            text = path.read_text(encoding="utf-8", errors="replace")
            findings += [Finding(path, "holds a credential value") for v in values if v in text][:1]
            try:
                document = yaml.safe_load(text) or {}
            except yaml.YAMLError:
                findings.append(Finding(path, "is not valid YAML"))
                continue
            for interaction in document.get("interactions") or []:
                for part in ("request", "response"):
                    recorded = (interaction.get(part) or {}).get("headers") or {}
                    for name, value in recorded.items():
                        if name.lower() in headers and value not in ([REDACTED], REDACTED):
                            findings.append(Finding(path, f"{part} header {name} is not scrubbed"))
    return findings
