"""A neutral contact as a Yespo ``Contact`` body, plus what the flows need around it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs
import email_validator

from contactsync.provider import Contact, ContactError, MappingContext, Subscription

from ._fields import FieldDefinition, check, serialize

NAME_LIMIT = 40
EmailAction = Literal["unsubscribe", "resubscribe", "confirm"]

# Standard fields a bulk request can name in contactFields (the spec's array-level enum).
CONTACT_FIELDS = frozenset(
    {
        "firstName", "contactKey", "lastName", "languageCode", "timeZone", "email", "sms",
        "mobilepush", "webpush", "address", "town", "region", "externalCustomerId", "postcode",
    }
)  # fmt: skip
# Keys of the spec's Contact schema the escape hatch may set.
_PASSTHROUGH = frozenset({"contactKey", "addressBookId"})


@attrs.frozen
class YespoPayload:
    body: dict[str, Any]
    """The ``Contact`` object (no ``groups``: Yespo only reads them)."""
    fields: frozenset[str]
    """The standard fields present: this contact's ``contactFields``."""
    custom_ids: tuple[int, ...]
    groups_add: tuple[str, ...] = ()
    groups_remove: tuple[str, ...] = ()
    email_action: EmailAction | None = None
    remote_id: int | None = None


_EMAIL_ACTIONS: dict[Subscription, EmailAction] = {
    Subscription.UNSUBSCRIBED: "unsubscribe",
    Subscription.SUBSCRIBED: "resubscribe",
    Subscription.PENDING: "confirm",
}


def _name(field: str, value: str | None) -> str | None:
    if value is not None and len(value) > NAME_LIMIT:
        raise ContactError(field, f"Yespo keeps at most {NAME_LIMIT} characters")
    return value


def _segment(ctx: MappingContext, name: str, field: str) -> str:
    segment = ctx.group_id(name, field)
    if not isinstance(segment, str):  # pragma: no cover - refused by check_tenant
        raise ContactError(field, "Yespo segments are configured by name")
    return segment


def _custom_id(ctx: MappingContext, name: str) -> int:
    raw = ctx.custom_field_id(name)
    try:
        return int(raw)
    except ValueError:  # pragma: no cover - refused by check_tenant
        raise ContactError(f"custom_fields.{name}", "Yespo field ids are numbers") from None


def to_payload(
    contact: Contact,
    ctx: MappingContext,
    definitions: Mapping[int, FieldDefinition],
    resubscribe: bool = False,
) -> YespoPayload:
    body: dict[str, Any] = {}
    fields: set[str] = set()

    def put(key: str, value: Any, field: str | None = None) -> None:
        if value is not None:
            body[key] = value
            fields.add(field or key)

    put("firstName", _name("first_name", contact.first_name))
    put("lastName", _name("last_name", contact.last_name))
    channels = []
    if contact.email is not None:
        channels.append({"type": "email", "value": wire_email(contact.email)})
        fields.add("email")
    if contact.phone is not None:
        channels.append({"type": "sms", "value": contact.phone})
        fields.add("sms")
    if not channels:
        raise ContactError("email", "Yespo needs an email or a phone (every contact has a channel)")
    body["channels"] = channels
    _address(contact, ctx, body, fields)
    put("externalCustomerId", contact.external_id)
    put("languageCode", contact.language)
    put("timeZone", contact.time_zone)

    custom, custom_ids = _custom_fields(contact, ctx, definitions)
    if custom:
        body["fields"] = custom

    for key, value in contact.options_for("yespo").items():
        if key not in _PASSTHROUGH:
            raise ContactError(
                f"provider_options.yespo.{key}",
                f"not passed through (allowed: {', '.join(sorted(_PASSTHROUGH))})",
            )
        if value is None:
            continue
        body[key] = value
        # Only standard fields go in contactFields (addressBookId is not one of them).
        if key in CONTACT_FIELDS:
            fields.add(key)

    email_action = _unsupported_and_status(contact, ctx, resubscribe)

    return YespoPayload(
        body=body,
        fields=frozenset(fields),
        custom_ids=tuple(sorted(custom_ids)),
        groups_add=tuple(_segment(ctx, g, "groups.add") for g in contact.groups.add),
        groups_remove=tuple(_segment(ctx, g, "groups.remove") for g in contact.groups.remove),
        email_action=email_action,
        remote_id=_remote_id(contact),
    )


def _custom_fields(
    contact: Contact, ctx: MappingContext, definitions: Mapping[int, FieldDefinition]
) -> tuple[list[dict[str, Any]], set[int]]:
    custom: list[dict[str, Any]] = []
    custom_ids: set[int] = set()
    for name, value in contact.custom_fields.items():
        field_id = _custom_id(ctx, name)
        text = serialize(name, value)
        if field_id in definitions:
            check(name, text, definitions[field_id])
        custom.append({"id": field_id, "value": text})
        custom_ids.add(field_id)
    return custom, custom_ids


def _unsupported_and_status(
    contact: Contact, ctx: MappingContext, resubscribe: bool
) -> EmailAction | None:
    """Report what Yespo cannot express; return how the email status is applied."""
    if contact.birth_date is not None:
        ctx.unsupported("birth_date (map it to a custom date field instead)")
    if contact.tags:
        ctx.unsupported("tags")
    if contact.sms_status is not None:
        ctx.unsupported(f"sms_status {contact.sms_status.value}")
    if contact.groups.replace is not None:
        ctx.unsupported("replacing all groups (use add / remove)")
    if contact.email_status is None:
        return None
    email_action = _EMAIL_ACTIONS.get(contact.email_status)
    if email_action == "resubscribe" and not resubscribe:
        # The unsubscribed list is account-wide: removing the address re-subscribes a
        # person who unsubscribed on Yespo. Only when the tenant opts in.
        ctx.unsupported(
            "email_status subscribed without options.resubscribe (it would remove the "
            "address from Yespo's unsubscribed list, re-subscribing someone who unsubscribed)"
        )
        return None
    if email_action is None:
        ctx.unsupported(f"email_status {contact.email_status.value}")
    elif contact.email is None:
        raise ContactError("email_status", "Yespo sets email statuses by address: add the email")
    return email_action


def _remote_id(contact: Contact) -> int | None:
    if contact.remote_id is None:
        return None
    if not contact.remote_id.isdigit():
        raise ContactError("remote_id", "Yespo contact ids are numbers")
    return int(contact.remote_id)


def _address(contact: Contact, ctx: MappingContext, body: dict[str, Any], fields: set[str]) -> None:
    address = contact.address
    if address is None:
        return
    # The spec's keys (region / town / address / postcode), not the request example's.
    street = ", ".join(line for line in (address.line1, address.line2) if line)
    parts = {
        "address": street or None,
        "town": address.city,
        "region": address.region,
        "postcode": address.postal_code,
    }
    present = {k: v for k, v in parts.items() if v is not None}
    if present:
        body["address"] = present
        fields.update(present)
    if address.country is not None:
        ctx.unsupported("address.country (Yespo's address has no country)")


def _already_ascii(email: str) -> bool:
    """Whether ``email`` is already its own ASCII form: all ASCII, a lower-case domain
    and no punycode label. The contact's address was validated on input, and
    validating it again costs as much as the first time (a third of mapping a contact):
    such an address goes out as it is; any other is read again by email-validator."""
    domain = email.rpartition("@")[2]
    return email.isascii() and domain == domain.lower() and "xn--" not in domain


def wire_email(email: str) -> str:
    """``email`` with its domain IDNA-encoded (ASCII), as it goes out to Yespo.

    The neutral contact holds the domain in Unicode (``ann@xn--bcher-kva.de`` is read as
    ``ann@bücher.de``). Yespo's spec only calls the channel value an "Email address", and
    never that a Unicode domain is accepted or matched to its ASCII form; the ASCII
    form is the one every mail system and validator takes, and one address written
    either way always goes out the same. The part before the ``@`` is sent as given."""
    if _already_ascii(email):
        return email
    try:
        checked = email_validator.validate_email(
            email, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:  # pragma: no cover - checked on input
        raise ContactError("email", f"not a valid address ({exc})") from None
    return f"{checked.local_part}@{checked.ascii_domain}"
