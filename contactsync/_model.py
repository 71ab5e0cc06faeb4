"""The provider-neutral contact.

Every value is checked where it is set, so a :class:`Contact` that exists is valid
apart from one thing that needs the tenant: a phone number written without a
country code, which :meth:`Contact.with_phone_region` completes.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs

from ._errors import ContactError, UnknownField
from ._normalize import (
    check_country,
    check_language,
    check_text,
    check_time_zone,
    is_e164,
    normalize_email,
    normalize_phone,
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})
"""Shared by every contact without custom fields or options (read-only, so safe)."""

CustomValue: TypeAlias = str | int | float | bool | dt.date | dt.datetime
"""The types a custom field value may have (``datetime`` is a ``date`` subclass)."""


class Subscription(enum.StrEnum):
    """One neutral subscription status, used for both the email and the SMS channel."""

    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PENDING = "pending"
    """Waiting for the person to confirm (double opt-in)."""
    BOUNCED = "bounced"
    """The channel failed: a hard email bounce, an SMS number that cannot receive."""
    NO_MARKETING = "no_marketing"
    """Reachable for transactional messages only."""


class ChangeMode(enum.StrEnum):
    """How a contact's memberships (groups or tags) change."""

    ADD = "add"
    REMOVE = "remove"
    REPLACE = "replace"


def _names(field: str) -> Callable[[Iterable[str] | None], tuple[str, ...]]:
    def convert(values: Iterable[str] | None) -> tuple[str, ...]:
        if values is None:
            return ()
        if isinstance(values, str):
            raise ContactError(field, "must be a list of names, not a single string")
        seen: dict[str, None] = {}
        for position, value in enumerate(values):
            name = check_text(f"{field}[{position}]", value)
            if name is None:
                raise ContactError(f"{field}[{position}]", "is blank")
            seen[name] = None
        return tuple(seen)

    return convert


# Built once (converters run for every contact). The one-line functions around them
# exist because attrs' type checking only follows converters that are named functions.
_ADD, _REMOVE, _REPLACE = _names("add"), _names("remove"), _names("replace")


def _add_names(values: Iterable[str] | None) -> tuple[str, ...]:
    return _ADD(values)


def _remove_names(values: Iterable[str] | None) -> tuple[str, ...]:
    return _REMOVE(values)


def _replace_names(values: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if values is None else _REPLACE(values)


@attrs.frozen
class MembershipChange:
    """Names to add and remove, or the complete set that replaces all others.

    Order is kept (first occurrence wins) so requests are deterministic.
    """

    add: tuple[str, ...] = attrs.field(default=(), converter=_add_names)
    remove: tuple[str, ...] = attrs.field(default=(), converter=_remove_names)
    replace: tuple[str, ...] | None = attrs.field(default=None, converter=_replace_names)

    def __attrs_post_init__(self) -> None:
        if self.replace is not None and (self.add or self.remove):
            raise ContactError("replace", "cannot be combined with add or remove")
        both = set(self.add) & set(self.remove)
        if both:
            raise ContactError("remove", f"names also in add: {', '.join(sorted(both))}")

    @classmethod
    def replacing(cls, names: Iterable[str]) -> MembershipChange:
        return cls(replace=tuple(names))

    @property
    def modes(self) -> frozenset[ChangeMode]:
        modes = set()
        if self.replace is not None:
            modes.add(ChangeMode.REPLACE)
        if self.add:
            modes.add(ChangeMode.ADD)
        if self.remove:
            modes.add(ChangeMode.REMOVE)
        return frozenset(modes)

    def __bool__(self) -> bool:
        return bool(self.add or self.remove or self.replace is not None)


NO_CHANGE = MembershipChange()

MembershipInput: TypeAlias = MembershipChange | Mapping[str, Any] | Iterable[str] | None
"""What ``groups`` and ``tags`` accept: a change, its table, or a bare list of names."""


def _membership(field: str) -> Callable[[MembershipInput], MembershipChange]:
    def convert(value: MembershipInput) -> MembershipChange:
        if value is None:
            return NO_CHANGE
        if isinstance(value, MembershipChange):
            return value
        if isinstance(value, str):
            raise ContactError(field, "must be a list of names, not a single string")
        try:
            if isinstance(value, Mapping):
                return _membership_from_mapping(value)
            # A bare list of groups replaces them all; a bare list of tags adds them.
            if field == "groups":
                return MembershipChange(replace=tuple(value))
            return MembershipChange(add=tuple(value))
        except ContactError as exc:
            raise exc.nested(field) from None

    return convert


def _membership_from_mapping(value: Mapping[str, Any]) -> MembershipChange:
    unknown = sorted(str(k) for k in value if k not in ("add", "remove", "replace"))
    if unknown:
        raise ContactError(unknown[0], "expected add, remove or replace")
    for key in ("add", "remove", "replace"):
        part = value.get(key)
        if part is not None and not isinstance(part, list | tuple):
            raise ContactError(key, "must be a list of names")
    return MembershipChange(
        add=value.get("add") or (), remove=value.get("remove") or (), replace=value.get("replace")
    )


def _line1(value: object) -> str | None:
    return check_text("line1", value)


def _line2(value: object) -> str | None:
    return check_text("line2", value)


def _city(value: object) -> str | None:
    return check_text("city", value)


def _region(value: object) -> str | None:
    return check_text("region", value)


def _postal_code(value: object) -> str | None:
    return check_text("postal_code", value, max_length=32)


def _first_name(value: object) -> str | None:
    return check_text("first_name", value)


def _last_name(value: object) -> str | None:
    return check_text("last_name", value)


def _optional_country(value: object) -> str | None:
    text = check_text("country", value)
    return None if text is None else check_country("country", text)


@attrs.frozen
class Address:
    line1: str | None = attrs.field(default=None, converter=_line1)
    line2: str | None = attrs.field(default=None, converter=_line2)
    city: str | None = attrs.field(default=None, converter=_city)
    region: str | None = attrs.field(default=None, converter=_region)
    """State, county or province."""
    postal_code: str | None = attrs.field(default=None, converter=_postal_code)
    country: str | None = attrs.field(default=None, converter=_optional_country)
    """ISO 3166-1 alpha-2, upper case."""

    def __bool__(self) -> bool:
        return any(getattr(self, a.name) is not None for a in attrs.fields(Address))


def _address(value: Address | Mapping[str, Any] | None) -> Address | None:
    if value is None or isinstance(value, Address):
        return value or None
    if not isinstance(value, Mapping):
        raise ContactError("address", "must be an Address or a mapping")
    known = {a.name for a in attrs.fields(Address)}
    for key in value:
        if key not in known:
            raise ContactError(f"address.{key}", "unknown address field")
    try:
        return Address(**value) or None
    except ContactError as exc:
        raise exc.nested("address") from None


def check_email_text(value: object) -> str | None:
    return check_text("email", value, max_length=320)


def _email(value: object) -> str | None:
    text = check_email_text(value)
    return None if text is None else normalize_email(text)


def check_phone_text(value: object) -> str | None:
    return check_text("phone", value, max_length=64)


def international_form(text: str) -> str | None:
    """The number ``text`` (checked) is normalized from without a region; None for a
    national number, which waits for the tenant's region."""
    if text.startswith("00"):
        # The international call prefix used by most of the world.
        return "+" + text[2:]
    return text if text.startswith("+") else None


def _phone(value: object) -> str | None:
    text = check_phone_text(value)
    if text is None:
        return None
    international = international_form(text)
    if international is not None:
        return normalize_phone(international, None)
    # National format: kept as written until the tenant's region is known.
    if not any(ch.isdigit() for ch in text):
        raise ContactError("phone", "contains no digits")
    return text


def _subscription(field: str) -> Callable[[object], Subscription | None]:
    def convert(value: object) -> Subscription | None:
        if value is None or isinstance(value, Subscription):
            return value
        if isinstance(value, str):
            try:
                return Subscription(value.strip().lower())
            except ValueError:
                pass
        allowed = ", ".join(s.value for s in Subscription)
        raise ContactError(field, f"must be one of {allowed}")

    return convert


_MAX_INT = 2**63
"""Whole numbers beyond 64 bits are refused: no platform stores them as numbers."""


def _custom_value(name: str, value: object) -> CustomValue:
    if isinstance(value, int) and not isinstance(value, bool) and not -_MAX_INT <= value < _MAX_INT:
        raise ContactError(f"custom_fields.{name}", "is too large a number (more than 64 bits)")
    if isinstance(value, bool | int | dt.date):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ContactError(f"custom_fields.{name}", "must be a finite number")
        return value
    if isinstance(value, str):
        text = check_text(f"custom_fields.{name}", value, max_length=4000)
        if text is None:
            raise ContactError(f"custom_fields.{name}", "is blank")
        return text
    raise ContactError(
        f"custom_fields.{name}",
        f"must be a string, number, boolean, date or datetime, not {type(value).__name__}",
    )


def _custom_fields(value: Mapping[str, object] | None) -> Mapping[str, CustomValue]:
    if not value and (value is None or isinstance(value, Mapping)):
        return _EMPTY
    if not isinstance(value, Mapping):
        raise ContactError("custom_fields", "must be a mapping of names to values")
    result: dict[str, CustomValue] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ContactError("custom_fields", "names must be non-blank strings")
        if item is None:
            raise ContactError(f"custom_fields.{name}", "is null; leave the name out instead")
        result[name] = _custom_value(name, item)
    return MappingProxyType(result)


def _check_json(value: object, field: str, depth: int = 0) -> None:
    """Options go to the platform as JSON: anything else is refused here, naming the
    field, rather than failing the whole request it would travel in."""
    if depth > 32:
        raise ContactError(field, "is nested too deeply")
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ContactError(field, "must be a finite number")
        return
    if isinstance(value, list | tuple):
        for n, item in enumerate(value):
            _check_json(item, f"{field}[{n}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ContactError(field, "keys must be strings")
            _check_json(item, f"{field}.{key}", depth + 1)
        return
    raise ContactError(field, f"a {type(value).__name__} cannot be sent as JSON")


def _provider_options(
    value: Mapping[str, Mapping[str, Any]] | None,
) -> Mapping[str, Mapping[str, Any]]:
    if not value and (value is None or isinstance(value, Mapping)):
        return _EMPTY
    if not isinstance(value, Mapping):
        raise ContactError("provider_options", "must map a provider name to its options")
    for name, options in value.items():
        if not isinstance(options, Mapping):
            raise ContactError(f"provider_options.{name}", "must be a mapping")
        for key, option in options.items():
            _check_json(option, f"provider_options.{name}.{key}")
    return MappingProxyType({name: MappingProxyType(dict(o)) for name, o in value.items()})


def _birth_date(value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        raise ContactError("birth_date", "must be a date, not a datetime")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ContactError("birth_date", "must be a date (YYYY-MM-DD)")


def _id(field: str) -> Callable[[object], str | None]:
    def convert(value: object) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return check_text(field, value)

    return convert


# Built once: converters run for every field of every contact.
_EXTERNAL_ID = _id("external_id")
_REMOTE_ID = _id("remote_id")
_EMAIL_STATUS = _subscription("email_status")
_SMS_STATUS = _subscription("sms_status")
_GROUPS = _membership("groups")
_TAGS = _membership("tags")


def _external_id(value: object) -> str | None:
    return _EXTERNAL_ID(value)


def _remote_id(value: object) -> str | None:
    return _REMOTE_ID(value)


def _email_status(value: object) -> Subscription | None:
    return _EMAIL_STATUS(value)


def _sms_status(value: object) -> Subscription | None:
    return _SMS_STATUS(value)


def _groups(value: MembershipInput) -> MembershipChange:
    return _GROUPS(value)


def _tags(value: MembershipInput) -> MembershipChange:
    return _TAGS(value)


def _language(value: object) -> str | None:
    text = check_text("language", value)
    return None if text is None else check_language(text)


def _time_zone(value: object) -> str | None:
    text = check_text("time_zone", value)
    return None if text is None else check_time_zone(text)


@attrs.frozen(eq=True, hash=False)
class Contact:
    """One person, in terms every provider understands.

    Blank strings count as absent. Fields left as ``None`` are never sent, so an
    update leaves the platform's value alone.
    """

    external_id: str | None = attrs.field(default=None, converter=_external_id)
    """The application's own id for this person: the preferred identity key."""
    remote_id: str | None = attrs.field(default=None, converter=_remote_id)
    """The platform's id, when the application already knows it."""
    first_name: str | None = attrs.field(default=None, converter=_first_name)
    last_name: str | None = attrs.field(default=None, converter=_last_name)
    email: str | None = attrs.field(default=None, converter=_email)
    phone: str | None = attrs.field(default=None, converter=_phone)
    address: Address | None = attrs.field(default=None, converter=_address)
    email_status: Subscription | None = attrs.field(default=None, converter=_email_status)
    sms_status: Subscription | None = attrs.field(default=None, converter=_sms_status)
    groups: MembershipChange = attrs.field(default=NO_CHANGE, converter=_groups)
    tags: MembershipChange = attrs.field(default=NO_CHANGE, converter=_tags)
    custom_fields: Mapping[str, CustomValue] = attrs.field(factory=dict, converter=_custom_fields)
    language: str | None = attrs.field(default=None, converter=_language)
    time_zone: str | None = attrs.field(default=None, converter=_time_zone)
    birth_date: dt.date | None = attrs.field(default=None, converter=_birth_date)
    provider_options: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, converter=_provider_options
    )
    """Platform-only fields, keyed by provider name, passed through by that provider."""

    def __new__(cls, *args: object, **kwargs: object) -> Contact:
        # attrs' __init__ would raise a bare TypeError for a misspelt keyword; this
        # names it, as a ContactError like every other bad value.
        for name in kwargs:
            if name not in _FIELD_NAMES:
                raise UnknownField(name, CONTACT_FIELDS)
        return super().__new__(cls)

    @property
    def phone_is_complete(self) -> bool:
        """Whether ``phone`` is absent or already in E.164 form."""
        return self.phone is None or is_e164(self.phone)

    def with_phone_region(self, region: str | None) -> Contact:
        """This contact with a national phone number completed using ``region``."""
        if self.phone_is_complete:
            return self
        assert self.phone is not None
        return attrs.evolve(self, phone=normalize_phone(self.phone, region))

    def options_for(self, provider: str) -> Mapping[str, Any]:
        return self.provider_options.get(provider, _EMPTY)


CONTACT_FIELDS = tuple(a.name for a in attrs.fields(Contact))
"""The model's field names, in declaration order."""
_FIELD_NAMES = frozenset(CONTACT_FIELDS)


def _plan() -> tuple[tuple[str, Callable[[Any], Any], Any], ...]:
    """Each field of Contact with its converter and its default, converted once."""
    plan: list[tuple[str, Callable[[Any], Any], Any]] = []
    for field in attrs.fields(Contact):
        assert callable(field.converter)
        default = field.default
        factory = getattr(default, "factory", None)
        plan.append(
            (
                field.name,
                field.converter,
                field.converter(default if factory is None else factory()),
            )
        )
    return tuple(plan)


_PLAN = _plan()
_ABSENT = object()


def contact_from_fields(values: Mapping[str, Any]) -> Contact:
    """``Contact(**values)`` for names already known to be fields, built the lean way.

    The same converters run on the same values in the same order (so the same value
    is refused first, with the same error), but an absent field takes its converted
    default straight away rather than converting it again: for the few fields a
    record usually sets, that halves the cost of building the contact. Every default
    is immutable, so contacts can share them.
    """
    contact = object.__new__(Contact)
    set_ = object.__setattr__
    get = values.get
    for name, convert, default in _PLAN:
        value = get(name, _ABSENT)
        set_(contact, name, default if value is _ABSENT else convert(value))
    return contact


_WORD = re.compile(r"[a-z_]+(?:\.[a-z_0-9]+)?")


def field_named_in(text: str) -> str | None:
    """The first contact field a description names ("replacing all groups" names
    ``groups``; "address.country (no country)" names ``address.country``)."""
    for word in map(str, _WORD.findall(text)):
        if word.split(".", 1)[0] in CONTACT_FIELDS:
            return word
    return None
