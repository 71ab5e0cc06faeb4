"""The neutral fields of a :class:`Contact`, each declared once, and the check that
keeps a provider from silently dropping one it does not map.

A provider lists the fields it maps in ``Capabilities.fields``. Before its
``prepare`` sees a contact, core rejects the contact for any set field outside that
list (``unsupported_feature``), or, when the tenant says ``on_unsupported = "warn"``,
clears the field and records a warning. A field added to ``Contact`` is therefore
mapped by no provider until one says so: it can never be dropped without a word.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ._model import Address, Contact

if TYPE_CHECKING:
    from ._provider import Capabilities, MappingContext


class Kind(enum.StrEnum):
    """How a field's value is checked (by its converter in ``_model``) and shown."""

    ID = "id"
    TEXT = "text"
    EMAIL = "email"
    PHONE = "phone"
    COUNTRY = "country"
    SUBSCRIPTION = "subscription"
    MEMBERSHIP = "membership"
    CUSTOM = "custom fields"
    LANGUAGE = "language"
    TIME_ZONE = "time zone"
    DATE = "date"
    OPTIONS = "provider options"


@attrs.frozen
class NeutralField:
    name: str
    """As a provider lists it in ``Capabilities.fields``; address parts are dotted."""
    kind: Kind
    summary: str
    # Worked out once: the guard asks every contact about every unmapped field.
    _top: str = attrs.field(init=False, repr=False, eq=False)
    _part: str | None = attrs.field(init=False, repr=False, eq=False)
    _empty_when_falsy: bool = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        top, _, part = self.name.partition(".")
        object.__setattr__(self, "_top", top)
        object.__setattr__(self, "_part", part or None)
        falsy = self.kind in (Kind.MEMBERSHIP, Kind.CUSTOM, Kind.OPTIONS)
        object.__setattr__(self, "_empty_when_falsy", falsy)

    def value(self, contact: Contact, provider: str) -> Any:
        if self.kind is Kind.OPTIONS:
            return contact.options_for(provider)
        value = getattr(contact, self._top)
        if self._part is not None and value is not None:
            return getattr(value, self._part)
        return value

    def is_set(self, contact: Contact, provider: str) -> bool:
        value = self.value(contact, provider)
        return bool(value) if self._empty_when_falsy else value is not None

    def feature(self, contact: Contact, provider: str, notes: Mapping[str, str]) -> str:
        """How the unsupported value is named to the user (``sms_status subscribed``)."""
        value = self.value(contact, provider)
        text = f"{self.name} {value.value}" if isinstance(value, enum.Enum) else self.name
        note = notes.get(self.name)
        return f"{text} ({note})" if note else text

    def cleared(self, contact: Contact, provider: str) -> Contact:
        if self.kind is Kind.OPTIONS:
            others = {k: v for k, v in contact.provider_options.items() if k != provider}
            return attrs.evolve(contact, provider_options=others)
        if self._part is None:
            # The field's default is what "not set" means (None, no change, empty).
            return attrs.evolve(contact, **{self._top: _default(self._top)})
        assert contact.address is not None  # only a set part is ever cleared
        address = attrs.evolve(contact.address, **{self._part: None})
        return attrs.evolve(contact, address=address if address else None)


def _default(name: str) -> Any:
    default = attrs.fields_dict(Contact)[name].default
    factory = getattr(default, "factory", None)
    return default if factory is None else factory()


def _table(*rows: tuple[str, Kind, str]) -> tuple[NeutralField, ...]:
    return tuple(NeutralField(name, kind, summary) for name, kind, summary in rows)


FIELDS = _table(
    ("external_id", Kind.ID, "the application's id"),
    ("remote_id", Kind.ID, "the platform's id"),
    ("first_name", Kind.TEXT, "first name"),
    ("last_name", Kind.TEXT, "last name"),
    ("email", Kind.EMAIL, "email address"),
    ("phone", Kind.PHONE, "phone number (E.164)"),
    ("address.line1", Kind.TEXT, "street, first line"),
    ("address.line2", Kind.TEXT, "street, second line"),
    ("address.city", Kind.TEXT, "city"),
    ("address.region", Kind.TEXT, "state, county or province"),
    ("address.postal_code", Kind.TEXT, "postal code"),
    ("address.country", Kind.COUNTRY, "country (ISO 3166-1 alpha-2)"),
    ("email_status", Kind.SUBSCRIPTION, "email subscription"),
    ("sms_status", Kind.SUBSCRIPTION, "SMS subscription"),
    ("groups", Kind.MEMBERSHIP, "groups (lists, segments)"),
    ("tags", Kind.MEMBERSHIP, "tags"),
    ("custom_fields", Kind.CUSTOM, "custom fields"),
    ("language", Kind.LANGUAGE, "language"),
    ("time_zone", Kind.TIME_ZONE, "time zone"),
    ("birth_date", Kind.DATE, "birth date"),
    ("provider_options", Kind.OPTIONS, "platform-only keys passed through"),
)
NAMES = frozenset(f.name for f in FIELDS)


def _declared_once() -> None:
    """Every attribute of Contact (and Address) is in the table, and nothing else is."""
    expected = {f"address.{a.name}" for a in attrs.fields(Address)} | {
        a.name for a in attrs.fields(Contact) if a.name != "address"
    }
    if expected != NAMES:
        raise RuntimeError(f"the field table does not match Contact: {sorted(expected ^ NAMES)}")


_declared_once()


class FieldGuard:
    """Holds back, for one provider, every set field it does not map."""

    __slots__ = ("_notes", "_provider", "_tops", "_unmapped")

    def __init__(self, provider: str, capabilities: Capabilities) -> None:
        self._provider = provider
        self._notes = capabilities.field_notes
        self._unmapped = tuple(f for f in FIELDS if f.name not in capabilities.fields)
        self._tops = tuple(dict.fromkeys(f.name.partition(".")[0] for f in self._unmapped))
        """The attributes holding an unmapped field (``address`` for its parts)."""

    def check(self, contact: Contact, ctx: MappingContext) -> Contact:
        """``contact`` with nothing the provider does not map: raises
        ``UnsupportedFeature`` for the first such field that is set, or (when the tenant
        allows it) clears each one with a warning."""
        # Most contacts leave every unmapped attribute at its default: one cheap look
        # at each settles them (an empty mapping or membership change is falsy).
        if not any(getattr(contact, top) for top in self._tops):
            return contact
        for field in self._unmapped:
            if field.is_set(contact, self._provider):
                ctx.unsupported(field.feature(contact, self._provider, self._notes))
                contact = field.cleared(contact, self._provider)
        return contact
