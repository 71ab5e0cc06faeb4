"""Which platform account a tenant's requests reach: remote ids belong to one.

A state store keeps the platform's ids of the contacts it wrote. Those ids mean
something in one account only: carried to another one, a write "by id" lands on
whoever holds that id there. So every record is stored with its account, and a run
for another account never uses them (rule 10).

The account is the id the platform reports, where it has one. Otherwise it is the
provider's account selector (an app id) plus the host plus a one-way fingerprint of
the key: one host serves many accounts, so the key is what tells them apart. The id
is ``<place>.<key>``, each part a truncated SHA-256, so that a key change (same
place, another key) can be told from a move to another host or app.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final
from urllib.parse import urlsplit

from ._provider import Provider
from ._tenant import EMULATOR

_PLACE: Final = b"contactsync account place v1\0"
_KEY: Final = b"contactsync account key v1"
"""The HMAC key of the key fingerprint: a fixed label, so the fingerprint is the same
in every process and, being keyed and truncated, says nothing of the key."""
_REPORTED: Final = b"contactsync reported account v1\0"
_HEX: Final = 16


def host_of(base_url: str) -> str:
    """The host (and port, when one is given) a base URL sends to, lower-cased."""
    if base_url == EMULATOR:
        return EMULATOR
    parts = urlsplit(base_url if "//" in base_url else f"//{base_url}")
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def key_fingerprint(secrets: tuple[str, ...]) -> str:
    """A one-way fingerprint of the key: HMAC-SHA256 under a fixed label, truncated."""
    message = b"\0".join(secret.encode("utf-8") for secret in secrets)
    return hmac.new(_KEY, message, hashlib.sha256).hexdigest()[:_HEX]


def account_id(provider: Provider[object], reported: str | None = None) -> str:
    """The account ``provider``'s tenant reaches (``reported``: the platform's own id)."""
    if reported:
        return "id." + hashlib.sha256(_REPORTED + reported.encode("utf-8")).hexdigest()[:_HEX]
    key = provider.account_key()
    place = "\0".join((provider.name, key.selector, host_of(provider.tenant.base_url)))
    digest = hashlib.sha256(_PLACE + place.encode("utf-8")).hexdigest()[:_HEX]
    return f"{digest}.{key_fingerprint(key.secrets)}"


def same_place(a: str, b: str) -> bool:
    """Whether two account ids differ by the key only (same provider, selector, host)."""
    place_a, _, key_a = a.partition(".")
    place_b, _, key_b = b.partition(".")
    return place_a == place_b and place_a != "id" and key_a != key_b
