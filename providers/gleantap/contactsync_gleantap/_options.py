"""Tenant options and credentials for Gleantap."""

from __future__ import annotations

from typing import Literal

import attrs

from contactsync.provider import Secret


def _non_blank(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError(f"{attribute.name}: must not be blank")


@attrs.frozen
class GleantapCredentials:
    api_key: Secret
    """Sent as ``X-API-KEY``."""
    secret_key: Secret
    """Sent as ``X-SECRET-KEY``."""


@attrs.frozen
class GleantapOptions:
    app_id: str = attrs.field(validator=_non_blank)
    """The Gleantap app (account) every request names in its body."""
    lookup: bool = True
    """For contacts without ``external_id``: look them up by email or phone first, and
    warn when Gleantap holds that address under another first name (the write never
    renames a stored contact: it could be a different person sharing the address)."""
    adopt: Literal["warn", "never"] = "warn"
    """A contact with an ``external_id`` Gleantap does not hold, whose email (or phone)
    and first name match a contact the library cannot tie to another ``user_id``:
    ``"warn"`` writes it there (Gleantap's own rule would) with the warning
    ``adopted_by_email`` (or ``adopted_by_phone``); ``"never"`` rejects it
    (``identity_conflict``) and sends nothing."""
    sms_subscribed_sets_optin: bool = False
    """``sms_status = "subscribed"`` sends ``optin_sms: true``. Off (the default), it is
    unsupported: Gleantap does not document whether that flag skips its double opt-in,
    so consent is not set that way unless the tenant says it collected it. ``pending``
    (the documented ``optin`` double opt-in) works either way."""
    source: str | None = None
    """Default ``source`` for every contact (a contact's own option wins)."""
