"""Tenant options and credentials for Yespo."""

from __future__ import annotations

import re
from typing import Literal

import attrs

from contactsync.provider import Secret

# The spec's dedupeOn enum, less "push" (undocumented, and contactsync carries no
# push tokens) and "fieldId" (needs a per-request field id contactsync does not expose).
DedupeOn = Literal["email", "sms", "email_or_sms", "externalCustomerId", "id"]
Mode = Literal["realtime", "bulk", "auto"]

# The characters Yespo forbids in an event key (the spec's list), and spaces.
_EVENT_KEY_FORBIDDEN = re.compile("[<;\u2019\\\\/|\"`'^?!,> ]")


def _event_key(instance: object, attribute: object, value: str | None) -> None:
    if value is None:
        return
    if len(value) > 100 or _EVENT_KEY_FORBIDDEN.search(value):
        raise ValueError(
            "event_key_for_new_contacts: at most 100 characters, no spaces, "
            "and none of the characters Yespo forbids "
            "(< ; \u2019 \\ / | \" ` ' ^ ? ! , >)"
        )


@attrs.frozen
class YespoCredentials:
    api_key: Secret
    """Sent as the password of HTTP Basic auth (Yespo ignores the user name)."""


@attrs.frozen
class YespoOptions:
    mode: Mode = "auto"
    """``realtime``: one ``POST /api/v1/contact`` per contact. ``bulk``: ``POST
    /api/v1/contacts`` in batches of up to 3000. ``auto``: bulk at every batch size
    (Yespo's real-time and bulk methods match contacts by different rules, so choosing
    by batch size would change which contact a row lands on); real time only for what
    bulk cannot express (double opt-in, updates by ``remote_id``), as in ``bulk``."""
    bulk_threshold: int | None = None
    """No longer used (``auto`` no longer switches on batch size): setting it is a
    configuration error, so a tenant relying on it finds out."""
    dedupe_on: DedupeOn = "email"
    """Bulk ``dedupeOn`` for contacts **without** an external id. Contacts with one are
    sent with ``dedupeOn = "externalCustomerId"``, so Yespo never falls back to their
    email or phone (which would write their external id onto someone else's record)."""
    resubscribe: bool = False
    """``email_status = "subscribed"`` removes the address from the account-wide
    unsubscribed list (``/emails/unsubscribed/delete``). Off (the default) it is
    unsupported: a person who unsubscribed on Yespo is never re-subscribed unless the
    tenant says so."""
    restore_deleted: bool = False
    """Bulk ``restoreDeleted``: restore contacts deleted on Yespo whose external id comes back."""
    event_key_for_new_contacts: str | None = attrs.field(default=None, validator=_event_key)
    check_field_types: bool = False
    """Read field definitions (``GET /api/v1/addressbooks``) once and check values against them."""
    poll_interval: float = 1.0
    """First wait before polling a bulk import session; grows by half each poll up to 30 s."""
    poll_timeout: float = 900.0
    """Give up on an import session after this many seconds of polling."""
