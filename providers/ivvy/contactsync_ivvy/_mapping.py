"""A neutral contact as an ``addOrUpdateContact`` body, plus what the flow needs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from contactsync.provider import (
    Contact,
    ContactError,
    MappingContext,
    Subscription,
    idna_email,
    numeric_remote_id,
    passthrough_options,
)

# fieldType values of getCustomFieldDefinition.
SMALL_TEXT, LARGE_TEXT, SINGLE_SELECT, MULTI_SELECT, ADDRESS, DATE, FILE, STATIC, NUMBER = range(9)
_UNSETTABLE = {
    ADDRESS: "address",
    FILE: "file",
    STATIC: "static text",
    MULTI_SELECT: "multiple select",
}

EMAIL_STATUS = {
    Subscription.SUBSCRIBED: 1,
    Subscription.UNSUBSCRIBED: 2,
    Subscription.BOUNCED: 3,
    # 4 "Registering" is read-only: iVvy took it out of addOrUpdateContact.
    Subscription.NO_MARKETING: 5,
}
SMS_STATUS = {
    Subscription.SUBSCRIBED: 1,
    Subscription.UNSUBSCRIBED: 2,
    Subscription.BOUNCED: 3,  # "Failed"
    Subscription.NO_MARKETING: 4,
}
_PASSTHROUGH = frozenset({"companies", "externalUrls", "privacyConsent"})


@attrs.frozen
class FieldDefinition:
    id: int
    type: int
    name: str = ""
    select_values: tuple[str, ...] = ()
    active: bool = True


@attrs.frozen
class IvvyPayload:
    body: dict[str, Any]
    """addOrUpdateContact parameters, without ``id`` / ``updateIfExists``."""
    external_id: str | None
    remote_id: int | None
    missing_for_create: tuple[str, ...]
    """Fields iVvy requires to create a contact that this one lacks."""
    groups_add: tuple[int, ...] = ()
    groups_remove: tuple[int, ...] = ()


def _value(name: str, value: Any, definition: FieldDefinition | None) -> Any:
    field = f"custom_fields.{name}"
    if isinstance(value, bool):
        raise ContactError(
            field, "iVvy custom fields have no boolean type; send the text the field expects"
        )
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ContactError(field, "iVvy timestamps are UTC; pass a datetime with a time zone")
        value = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    elif isinstance(value, dt.date):
        value = value.isoformat()
    if definition is None:
        return value
    if definition.type in _UNSETTABLE:
        raise ContactError(field, f"iVvy {_UNSETTABLE[definition.type]} fields cannot be set here")
    if definition.type == NUMBER and not (
        isinstance(value, int) or str(value).lstrip("-").isdigit()
    ):
        raise ContactError(field, "iVvy whole-number fields hold whole numbers")
    if definition.type == DATE:
        try:
            dt.date.fromisoformat(str(value)[:10])
        except ValueError:
            raise ContactError(field, "iVvy date fields hold dates (YYYY-MM-DD)") from None
    if (
        definition.type == SINGLE_SELECT
        and definition.select_values
        and str(value) not in definition.select_values
    ):
        raise ContactError(
            field, f"not one of the field's values ({', '.join(definition.select_values)})"
        )
    return value


def _group_ids(
    ctx: MappingContext, names: tuple[str, ...], field: str, by_name: Mapping[str, int]
) -> list[int]:
    ids = []
    for name in names:
        ref = ctx.group_id(name, field)
        if isinstance(ref, int):
            ids.append(ref)
        elif ref in by_name:
            ids.append(by_name[ref])
        else:
            raise ContactError(f"{field}.{name}", f"iVvy has no subscription group named {ref!r}")
    return ids


def to_payload(
    contact: Contact,
    ctx: MappingContext,
    definitions: Mapping[int, FieldDefinition],
    groups_by_name: Mapping[str, int],
) -> IvvyPayload:
    body: dict[str, Any] = {}
    for key, text in (
        ("firstName", contact.first_name),
        ("lastName", contact.last_name),
        # iVvy's docs only say "must be a valid email", never that a Unicode domain
        # is accepted or matched to its ASCII form: the ASCII form goes out.
        ("email", None if contact.email is None else idna_email(contact.email)),
        ("phone", contact.phone),
        ("externalId", contact.external_id),
    ):
        if text is not None:
            body[key] = text
    if contact.email_status is not None:
        if contact.email_status not in EMAIL_STATUS:
            ctx.unsupported(
                f"email_status {contact.email_status.value} (iVvy's Registering is read-only)"
            )
        else:
            body["status"] = EMAIL_STATUS[contact.email_status]
    if contact.sms_status is not None:
        if contact.sms_status not in SMS_STATUS:
            ctx.unsupported(f"sms_status {contact.sms_status.value}")
        else:
            body["smsStatus"] = SMS_STATUS[contact.sms_status]
    custom: list[dict[str, Any]] = []
    for name, value in contact.custom_fields.items():
        field_id = int(ctx.custom_field_id(name))
        custom.append(
            {"fieldId": field_id, "value": _value(name, value, definitions.get(field_id))}
        )
    if custom:
        body["customFields"] = custom
    groups = contact.groups
    if groups.replace is not None:
        body["groups"] = [
            {"groupId": g}
            for g in _group_ids(ctx, groups.replace, "groups.replace", groups_by_name)
        ]
    body.update(passthrough_options(contact, "ivvy", _PASSTHROUGH))
    remote_id = numeric_remote_id(contact, "iVvy")
    missing = tuple(
        f
        for f, k in (("first_name", "firstName"), ("last_name", "lastName"), ("email", "email"))
        if k not in body
    )
    if missing and remote_id is None and contact.external_id is None:
        # Nothing to find it by, and not enough to create it: it could never be written.
        raise ContactError(
            missing[0],
            "iVvy needs first_name, last_name and email to create a contact "
            "(or remote_id / external_id to find one)",
        )
    return IvvyPayload(
        body=body,
        external_id=contact.external_id,
        remote_id=remote_id,
        missing_for_create=missing,
        groups_add=tuple(_group_ids(ctx, groups.add, "groups.add", groups_by_name)),
        groups_remove=tuple(_group_ids(ctx, groups.remove, "groups.remove", groups_by_name)),
    )
