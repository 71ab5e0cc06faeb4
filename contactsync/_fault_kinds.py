"""The names of the faults an emulator can inject (apart from the emulator, so that
``contactsync emulate --help`` can list them without importing httpx)."""

from __future__ import annotations

KINDS = ("429", "429-hinted", "500", "503", "drop", "lost")
"""The default fault kinds: 429 without and with ``Retry-After``, 500, 503, a dropped
connection, and a request applied whose response is then lost."""
SLOW = "slow"
"""Opt-in kind: the request is applied, then the response waits ``slow_seconds``."""
