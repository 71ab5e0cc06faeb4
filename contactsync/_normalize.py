"""Normalizers for the values whose syntax is checked by a dedicated library.

Both are cached: the same address or number repeats across runs and tenants, and
parsing is the dominant cost of building a contact. The caches can also be filled from
outside (:func:`remember_email`, :func:`remember_phone`) with what these same functions
answered in another process (:mod:`._ahead`). The two libraries are imported on
first use: together they take about a third of ``import contactsync``, and neither
``contactsync --help`` nor loading a configuration without a phone region needs them.
"""

from __future__ import annotations

import functools
import re
import threading
import types
import unicodedata
import zoneinfo
from collections.abc import Callable
from typing import Any

from ._errors import ContactError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# BCP 47 shape only (primary subtag, optional script/region/variants); registries are not checked.
_LANGUAGE = re.compile(
    r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?(-[A-Za-z0-9]{5,8})*$"
)
_COUNTRY = re.compile(r"^[A-Z]{2}$")


CACHE_SIZE = 65536


class _Cache:
    """A bounded map, safe to fill from another thread; the oldest entry goes first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: dict[object, str] = {}
        self._lock = threading.Lock()

    def get(self, key: object) -> str | None:
        return self._values.get(key)

    def put(self, key: object, value: str) -> None:
        if len(self._values) < self._size - 64:
            # Far from full: one dict assignment is atomic, no eviction can race it
            # (another thread may add at most one entry more each meanwhile).
            self._values[key] = value
            return
        with self._lock:
            if len(self._values) >= self._size and key not in self._values:
                del self._values[next(iter(self._values))]
            self._values[key] = value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


_emails = _Cache(CACHE_SIZE)
_phones = _Cache(CACHE_SIZE)


def clear_caches() -> None:
    _emails.clear()
    _phones.clear()
    _email_validator.cache_clear()  # and with it the domains it remembered


def normalize_email(value: str) -> str:
    known = _emails.get(value)
    if known is not None:
        return known
    normalized = validate_email(value)
    _emails.put(value, normalized)
    return normalized


def remember_email(value: str, normalized: str) -> None:
    """Record what :func:`validate_email` answered for ``value`` (in another process)."""
    _emails.put(value, normalized)


def normalize_phone(value: str, region: str | None) -> str:
    """E.164 form of ``value``; national numbers need ``region`` (ISO 3166 alpha-2)."""
    known = _phones.get((value, region))
    if known is not None:
        return known
    normalized = validate_phone(value, region)
    _phones.put((value, region), normalized)
    return normalized


def remember_phone(value: str, region: str | None, normalized: str) -> None:
    """Record what :func:`validate_phone` answered for ``value`` (in another process)."""
    _phones.put((value, region), normalized)


DOMAIN_CACHE_SIZE = 4096
"""Email domains whose checked form is remembered (see :func:`_email_validator`)."""


@functools.cache
def _email_validator() -> Callable[..., Any]:
    """email-validator's own ``validate_email``, with its domain step remembered.

    Most of the library's time goes to the part after the @ (character classes, UTS-46,
    IDNA), and a list of contacts repeats a few domains thousands of times. The function
    returned runs the library's very code (the same code object), whose global
    ``validate_email_domain_name`` is bound to a memoized copy of that step: each
    address is checked in full, each distinct domain worked out once. The step is a
    pure function of its arguments (syntax only: deliverability is never checked
    here), and only answers are kept, so a refused domain is checked, and refused,
    every time. Should a later release of the library no longer look the step up by
    that name, the library's function is used unchanged.
    """
    import email_validator  # noqa: PLC0415 - see the module docstring

    plain = email_validator.validate_email
    name = "validate_email_domain_name"
    code = plain.__code__
    step = plain.__globals__.get(name)
    if name not in code.co_names or not callable(step):
        return plain  # pragma: no cover - a release that reorganised the library
    remembered = functools.lru_cache(maxsize=DOMAIN_CACHE_SIZE)(step)

    def domain_step(
        domain: str, test_environment: bool = False, globally_deliverable: bool = True
    ) -> Any:
        # A copy: the caller owns what it is handed.
        return dict(remembered(domain, test_environment, globally_deliverable))

    globals_ = {**plain.__globals__, name: domain_step}
    clone = types.FunctionType(code, globals_, plain.__name__, plain.__defaults__)
    clone.__kwdefaults__ = plain.__kwdefaults__
    return clone


def validate_email(value: str) -> str:
    """The normalized form of ``value`` (email-validator, no DNS), worked out afresh
    but for its domain's part (see :func:`_email_validator`)."""
    import email_validator  # noqa: PLC0415 - see the module docstring

    try:
        result = _email_validator()(value, check_deliverability=False, allow_smtputf8=True)
    except email_validator.EmailNotValidError as exc:
        raise ContactError("email", f"not a valid address ({exc})") from None
    return str(result.normalized)


def validate_phone(value: str, region: str | None) -> str:
    """E.164 form of ``value``, uncached."""
    import phonenumbers  # noqa: PLC0415 - see the module docstring

    try:
        parsed = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            problem = (
                "has no country code and the tenant sets no default_phone_region"
                if region is None and not value.startswith("+")
                else "has an unknown country code"
            )
            raise ContactError("phone", problem) from None
        raise ContactError("phone", f"not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ContactError("phone", "not a valid number for its country")
    if parsed.extension:
        # E.164 has no extension: formatting would drop it without a word.
        raise ContactError(
            "phone",
            f"has an extension ({parsed.extension}), which E.164 cannot hold and no "
            "platform field takes: send the number without it",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_e164(value: str) -> bool:
    return value.startswith("+") and value[1:].isdigit()


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(field: str, value: object, *, max_length: int = 255) -> str | None:
    """A stripped single-line string, or None when blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContactError(field, f"must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isprintable() and len(text) <= max_length:
        return text  # printable ASCII holds neither control characters nor surrogates
    # One spelling per text: "Zoe" + U+0308 and "Zoë" are one name to a reader but two
    # to a platform comparing strings, so keys and payloads take the composed (NFC)
    # form; never NFKC, which would merge characters that differ (ligatures, widths).
    text = unicodedata.normalize("NFC", text)
    if _CONTROL.search(text):
        raise ContactError(field, "contains control characters")
    if _SURROGATE.search(text):
        raise ContactError(field, "is not valid Unicode (a lone surrogate)")
    if len(text) > max_length:
        raise ContactError(field, f"is longer than {max_length} characters")
    return text


def check_language(value: str) -> str:
    if not _LANGUAGE.match(value):
        raise ContactError("language", "not a BCP 47 language tag such as 'en' or 'pt-BR'")
    return value


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(value: str) -> str:
    if value not in _time_zones():
        raise ContactError("time_zone", "not an IANA time zone name such as 'Europe/London'")
    return value


def check_country(field: str, value: str) -> str:
    import phonenumbers  # noqa: PLC0415 - see the module docstring

    upper = value.upper()
    if not _COUNTRY.match(upper) or upper not in phonenumbers.SUPPORTED_REGIONS | {"AQ", "BV"}:
        raise ContactError(field, "not an ISO 3166-1 alpha-2 country code")
    return upper


def check_region(value: str | None) -> str | None:
    """A tenant's default phone region, validated the same way as address countries."""
    if value is None:
        return None
    import phonenumbers  # noqa: PLC0415 - see the module docstring

    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a region phonenumbers knows (ISO 3166-1 alpha-2)")
    return value.upper()
