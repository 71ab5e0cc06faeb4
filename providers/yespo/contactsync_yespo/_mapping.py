"""A neutral contact as a Yespo ``Contact`` body, plus what the flows need around it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from contactsync.provider import (
    Contact,
    ContactError,
    MappingContext,
    Subscription,
    idna_email,
    numeric_remote_id,
    passthrough_options,
    street,
)

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
    # Written out field by field, without helpers: this runs for every contact.
    body: dict[str, Any] = {}
    fields: set[str] = set()
    first_name = _name("first_name", contact.first_name)
    if first_name is not None:
        body["firstName"] = first_name
        fields.add("firstName")
    last_name = _name("last_name", contact.last_name)
    if last_name is not None:
        body["lastName"] = last_name
        fields.add("lastName")
    channels = []
    if contact.email is not None:
        # Yespo's spec only calls the value an "Email address", never that a Unicode
        # domain is accepted or matched to its ASCII form: the ASCII form goes out.
        channels.append({"type": "email", "value": idna_email(contact.email)})
        fields.add("email")
    if contact.phone is not None:
        channels.append({"type": "sms", "value": contact.phone})
        fields.add("sms")
    if not channels:
        raise ContactError("email", "Yespo needs an email or a phone (every contact has a channel)")
    body["channels"] = channels
    if contact.address is not None:
        _address(contact, ctx, body, fields)
    if contact.external_id is not None:
        body["externalCustomerId"] = contact.external_id
        fields.add("externalCustomerId")
    if contact.language is not None:
        body["languageCode"] = contact.language
        fields.add("languageCode")
    if contact.time_zone is not None:
        body["timeZone"] = contact.time_zone
        fields.add("timeZone")

    custom_ids: tuple[int, ...] = ()
    if contact.custom_fields:
        custom, ids = _custom_fields(contact, ctx, definitions)
        body["fields"] = custom
        custom_ids = tuple(sorted(ids))

    if contact.provider_options:
        for key, value in passthrough_options(contact, "yespo", _PASSTHROUGH).items():
            if value is None:
                continue
            body[key] = value
            # Only standard fields go in contactFields (addressBookId is not one of them).
            if key in CONTACT_FIELDS:
                fields.add(key)

    email_action = _unsupported_and_status(contact, ctx, resubscribe)
    groups = contact.groups
    return YespoPayload(
        body=body,
        fields=frozenset(fields),
        custom_ids=custom_ids,
        groups_add=tuple(_segment(ctx, g, "groups.add") for g in groups.add) if groups.add else (),
        groups_remove=(
            tuple(_segment(ctx, g, "groups.remove") for g in groups.remove) if groups.remove else ()
        ),
        email_action=email_action,
        remote_id=None if contact.remote_id is None else _remote_id(contact),
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
    """Report what Yespo cannot express; return how the email status is applied.
    (Fields Yespo does not map at all never get here: core holds them back.)"""
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
    return numeric_remote_id(contact, "Yespo")


def _address(contact: Contact, ctx: MappingContext, body: dict[str, Any], fields: set[str]) -> None:
    address = contact.address
    if address is None:
        return
    # The spec's keys (region / town / address / postcode), not the request example's.
    parts = {
        "address": street(address),
        "town": address.city,
        "region": address.region,
        "postcode": address.postal_code,
    }
    present = {k: v for k, v in parts.items() if v is not None}
    if present:
        body["address"] = present
        fields.update(present)
