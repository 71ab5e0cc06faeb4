"""Small pieces every provider's mapping and flows need, written once."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import email_validator

from ._errors import ContactError
from ._model import Address, Contact
from ._outcome import Outcome, OutcomeError, Status
from ._provider import Prepared, Response


def passthrough_options(
    contact: Contact, provider: str, allowed: Collection[str]
) -> Mapping[str, Any]:
    """``contact``'s ``provider_options[provider]``, every key checked against ``allowed``
    (a key outside it rejects the contact, naming the key)."""
    options = contact.options_for(provider)
    for key in options:
        if key not in allowed:
            raise ContactError(
                f"provider_options.{provider}.{key}",
                f"not passed through (allowed: {', '.join(sorted(allowed))})",
            )
    return options


def numeric_remote_id(contact: Contact, platform: str) -> int | None:
    """``contact.remote_id`` as the whole number a platform's ids are, or ``None``."""
    if contact.remote_id is None:
        return None
    if not contact.remote_id.isdigit():
        raise ContactError("remote_id", f"{platform} contact ids are numbers")
    return int(contact.remote_id)


def street(address: Address) -> str | None:
    """The address lines as one street line (``"1 High St, Flat 2"``), or ``None``."""
    return ", ".join(line for line in (address.line1, address.line2) if line) or None


def already_ascii(email: str) -> bool:
    """Whether ``email`` is already its own ASCII form: all ASCII, a lower-case domain
    and no punycode label. The contact's address was validated on input, and
    validating it again costs as much as the first time (a third of mapping a contact):
    such an address goes out as it is; any other is read again by email-validator."""
    domain = email.rpartition("@")[2]
    return email.isascii() and domain == domain.lower() and "xn--" not in domain


def idna_email(email: str) -> str:
    """``email`` with its domain IDNA-encoded (ASCII), the part before the ``@`` as given.

    The neutral contact holds the domain in Unicode; the ASCII form is the one every
    mail system and validator takes, so one address written either way always goes
    out the same."""
    if already_ascii(email):
        return email
    try:
        checked = email_validator.validate_email(
            email, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:  # pragma: no cover - checked on input
        raise ContactError("email", f"not a valid address ({exc})") from None
    return f"{checked.local_part}@{checked.ascii_domain}"


def platform_error(response: Response, what: str, *, detail: bool = False) -> OutcomeError:
    """A ``platform_error`` for a refusal: ``what`` failed, with the status and the start
    of the body (and, with ``detail``, more of the body in ``detail``)."""
    return OutcomeError(
        "platform_error",
        f"{what}: HTTP {response.status_code} {response.text[:500]}".rstrip(),
        status_code=response.status_code,
        detail={"body": response.text[:2000]} if detail else None,
    )


def failed(item: Prepared[Any], error: OutcomeError, remote_id: str | int | None = None) -> Outcome:
    """``item``'s failed outcome (with the platform's id when one is known)."""
    return Outcome(
        item.index,
        Status.FAILED,
        remote_id=None if remote_id is None else str(remote_id),
        error=error,
    )
