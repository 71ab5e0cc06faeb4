"""How the provider cassette tests run: replay (default), or record.

- unset: replay offline, ``record_mode="none"``;
- ``CONTACTSYNC_RECORD=1``: record from the provider's emulator;
- ``CONTACTSYNC_RECORD=real``: record against the real platform, with credentials from
  ``CONTACTSYNC_<PROVIDER>_<FIELD>`` (e.g. ``CONTACTSYNC_YESPO_API_KEY``) and the base
  URL from ``CONTACTSYNC_<PROVIDER>_BASE_URL`` if set; skipped when any is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import pytest

from contactsync.provider import default_registry

MODE = os.environ.get("CONTACTSYNC_RECORD", "")


def recording() -> bool:
    return bool(MODE)


def record_mode() -> str:
    return "all" if MODE else "none"


def transport(emulator: Callable[[], httpx.MockTransport]) -> httpx.MockTransport | None:
    """The emulator when recording from it; otherwise the network (the cassette replaces it)."""
    return emulator() if MODE and MODE != "real" else None


def for_real(config: dict[str, Any], tenant: str) -> dict[str, Any]:
    """``config`` pointed at the real platform when recording against it (else unchanged)."""
    if MODE != "real":
        return config
    table = config["tenants"][tenant]
    provider = default_registry.get(table["provider"])
    prefix = f"CONTACTSYNC_{provider.name.upper()}_"
    names = [f.name for f in attrs.fields(provider.credentials_type)]
    missing = [prefix + n.upper() for n in names if prefix + n.upper() not in os.environ]
    if missing:
        pytest.skip(f"recording against {provider.display_name} needs {', '.join(missing)}")
    table["credentials"] = {n: f"env:{prefix}{n.upper()}" for n in names}
    table.pop("base_url", None)
    if prefix + "BASE_URL" in os.environ:
        table["base_url"] = os.environ[prefix + "BASE_URL"]
    return config
