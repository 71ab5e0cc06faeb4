"""Shared pieces of the acceptance tests: a provider's emulator served on loopback by
``contactsync emulate`` in a subprocess, and generated contacts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from contactsync._cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@contextmanager
def emulate(provider: str, *args: str) -> Iterator[str]:
    """Run ``contactsync emulate PROVIDER --port 0 ARGS`` and yield its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "contactsync", "emulate", provider, "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def stored(url: str) -> list[dict[str, Any]]:
    return httpx.get(f"{url}/__emulator__/contacts", timeout=30).json()  # type: ignore[no-any-return]


def generated(count: int, path: Path, **extra: Any) -> list[dict[str, Any]]:
    """``count`` valid contacts, every one with an email and a phone, written as JSON lines."""
    rows = [
        {
            "external_id": f"gen-{n}",
            "first_name": f"First{n}",
            "last_name": f"Last{n}",
            "email": f"person{n}@example.com",
            "phone": f"+4420{7946_0000 + n:08d}",
            **extra,
        }
        for n in range(count)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def cli_upsert(url: str, config: Path, contacts: Path, out: Path, tenant: str = "acc") -> int:
    """``contactsync upsert`` of ``contacts`` to the emulator at ``url``; its exit code."""
    result = CliRunner().invoke(main, ["upsert", "--config", str(config), "--tenant", tenant,
                                       "--base-url", url, str(contacts), "--report", str(out)])  # fmt: skip
    return result.exit_code


def report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]
