"""A neutral contact as a ``newContact`` body."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import attrs
import email_validator

from contactsync.provider import (
    Contact,
    ContactError,
    MappingContext,
    Subscription,
    already_ascii,
    passthrough_options,
    street,
)

# Every key newContact documents; a custom attribute may not take one of these names.
DOCUMENTED = frozenset(
    {
        "app_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "city",
        "state",
        "zip",
        "source",
        "user_id",
        "dob",
        "created_date",
        "gender",
        "type",
        "status",
        "location",
        "optin_sms",
        "optout_email",
        "tags",
        "tag_action",
    }
)
# Documented fields contactsync has no neutral field for: set through provider_options.
PASSTHROUGH = frozenset({"source", "gender", "type", "status", "location", "created_date"})
_CREATED_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@attrs.frozen
class GleantapPayload:
    body: dict[str, Any]
    """newContact body without tags (app_id included)."""
    identity: dict[str, Any]
    """What a follow-up request needs to find the same contact: names and keys."""
    tags_add: tuple[str, ...] = ()
    tags_remove: tuple[str, ...] = ()
    sms_double_opt_in: bool = False


def _created_date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and _CREATED_DATE.match(value):
        return value
    raise ContactError(
        "provider_options.gleantap.created_date", "must be a datetime or 'YYYY-MM-DD HH:MM:SS'"
    )


def _attribute_value(name: str, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _tags(field: str, names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if "," in name:
            raise ContactError(
                field, f"tag {name!r} contains a comma (Gleantap separates tags with commas)"
            )
    return names


def to_payload(
    contact: Contact,
    ctx: MappingContext,
    app_id: str,
    source: str | None,
    *,
    sms_subscribed_sets_optin: bool = False,
) -> GleantapPayload:
    if contact.first_name is None or contact.last_name is None:
        missing = "first_name" if contact.first_name is None else "last_name"
        raise ContactError(missing, "Gleantap requires first_name and last_name on every write")
    body: dict[str, Any] = {
        "app_id": app_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
    }
    for key, text in (
        ("email", None if contact.email is None else ascii_email(contact.email)),
        ("phone", contact.phone),
        ("user_id", contact.external_id),
    ):
        if text is not None:
            body[key] = text
    if contact.external_id is None and contact.email is None and contact.phone is None:
        raise ContactError(
            "external_id", "Gleantap needs external_id, email or phone to find the contact again"
        )
    if contact.birth_date is not None:
        body["dob"] = contact.birth_date.isoformat()
    _address(contact, ctx, body)
    _statuses(contact, ctx, body, sms_subscribed_sets_optin)
    if source is not None:
        body["source"] = source
    for key, value in passthrough_options(contact, "gleantap", PASSTHROUGH).items():
        body[key] = _created_date(value) if key == "created_date" else value
    for name, custom in contact.custom_fields.items():
        # Only mapped names: Gleantap stores any extra key as a custom attribute, so an
        # unmapped name (a typo) would create a new attribute in the customer's account.
        # The mapping's keys are checked by check_tenant (not documented, valid names).
        key = str(ctx.custom_field_id(name))
        body[key] = _attribute_value(name, custom)
    if contact.tags.replace is not None:
        ctx.unsupported("replacing all tags (use add / remove)")
    identity: dict[str, Any] = {
        k: body[k]
        for k in ("app_id", "first_name", "last_name", "user_id", "email", "phone")
        if k in body
    }
    return GleantapPayload(
        body=body,
        identity=identity,
        tags_add=_tags("tags.add", contact.tags.add),
        tags_remove=_tags("tags.remove", contact.tags.remove),
        sms_double_opt_in=contact.sms_status is Subscription.PENDING,
    )


def _address(contact: Contact, ctx: MappingContext, body: dict[str, Any]) -> None:
    address = contact.address
    if address is None:
        return
    for key, value in (
        ("address", street(address)),
        ("city", address.city),
        ("state", address.region),
        ("zip", address.postal_code),
    ):
        if value is not None:
            body[key] = value


def _statuses(
    contact: Contact, ctx: MappingContext, body: dict[str, Any], sets_optin: bool
) -> None:
    # Two booleans of opposite sense: optout_email (true = opted out), optin_sms (true = opted in).
    email = contact.email_status
    if email is Subscription.SUBSCRIBED:
        body["optout_email"] = False
    elif email is Subscription.UNSUBSCRIBED:
        body["optout_email"] = True
    elif email is not None:
        ctx.unsupported(f"email_status {email.value}")
    sms = contact.sms_status
    if sms is Subscription.SUBSCRIBED:
        if not sets_optin:
            # api-notes §8: consent goes through the documented double opt-in, not a
            # silent optin_sms (whether it skips the confirmation SMS is undocumented).
            ctx.unsupported(
                "sms_status subscribed without options.sms_subscribed_sets_optin "
                "(use pending for Gleantap's double opt-in, or set the option if you "
                "collected SMS consent yourself)"
            )
            return
        body["optin_sms"] = True
    elif sms is Subscription.UNSUBSCRIBED:
        body["optin_sms"] = False
    elif sms is Subscription.PENDING:
        missing = [
            f
            for f, v in (
                ("phone", contact.phone),
                ("email", contact.email),
                ("external_id", contact.external_id),
            )
            if v is None
        ]
        if missing:
            raise ContactError(
                missing[0], "Gleantap's SMS double opt-in needs phone, email and external_id"
            )
    elif sms is not None:
        ctx.unsupported(f"sms_status {sms.value}")


def ascii_email(email: str) -> str:
    """``email`` as Gleantap's ``format: email`` takes it: the domain IDNA-encoded (an
    ``xn--`` domain stays as it is, never turned into Unicode). The neutral contact keeps
    the address as normalized; only what goes out to Gleantap is ASCII."""
    if already_ascii(email):
        return email
    try:
        checked = email_validator.validate_email(
            email, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:  # pragma: no cover - checked on input
        raise ContactError("email", f"not a valid address ({exc})") from None
    if checked.ascii_email is None:
        raise ContactError(
            "email",
            "Gleantap takes RFC 5322 addresses (format: email): the part before @ must be ASCII",
        )
    return str(checked.ascii_email)
