"""Secrets: a string that never shows itself, and a scrubber for every form it takes.

:class:`Secret` wraps one credential; its repr, str and format are ``***``.
:class:`Scrubber` knows a tenant's secret values and replaces each of them, in every
encoding it can take on the wire or in an error message, with ``***`` in any text.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import html
import html.entities
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus

import attrs

_MASK: Final = "***"

MIN_SECRET_LENGTH: Final = 8
"""Shorter credentials are refused by the configuration: a scrubber masking a one-letter
secret would mask that letter in every message, and a short one is guessable anyway."""


def secret_problem(value: str) -> str | None:
    """Why ``value`` cannot be a credential, or ``None``. Never quotes the value.

    Refused: leading or trailing whitespace, any whitespace but a plain inner space
    (tabs, line breaks, no-break spaces…) and control or non-printable characters. A
    trailing space or ``\\r`` copied from a ``.env`` file would otherwise be sent,
    refused by the HTTP layer, and echoed in full in its error message.
    """
    if value != value.strip():
        where = "leading" if value[:1].isspace() else "trailing"
        return f"contains a {where} whitespace character"
    for position, char in enumerate(value, 1):
        if char.isspace() and char != " ":
            return f"contains a whitespace character other than a space (position {position})"
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            return f"contains a control or non-printable character (position {position})"
    return None


class Secret:
    """Wraps a credential. Only :meth:`reveal` gives the value back.

    Raises :class:`ValueError` (without the value) when ``value`` holds whitespace or
    control characters: see :func:`secret_problem`.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret must be a string")
        problem = secret_problem(value)
        if problem is not None:
            raise ValueError(
                f"a secret must not contain whitespace or control characters: {problem}"
            )
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, format_spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would copy the value somewhere we cannot see; refuse.
        raise TypeError("secrets cannot be pickled")


MASK: Final = _MASK

# What may stand for one base64 character once a platform has escaped its text: ``/``
# as ``\/`` (JSON as PHP writes it) or ``\u002f``, and ``+ / =`` percent-encoded.
_B64_TOKEN_CHAR = (
    r"(?:[A-Za-z0-9+/_=-]|\\+/|\\+(?i:u00(?:2f|2b|3d))|%(?i:2f|2b|3d)"
    r"|&#(?i:x0*(?:2f|2b|3d)|0*(?:47|43|61));)"
)
_B64_RUN = re.compile(f"{_B64_TOKEN_CHAR}*")
_B64_BEFORE = re.compile(f"{_B64_TOKEN_CHAR}*$")
_B64_CHARS = "A-Za-z0-9+/_-"
_BASIC = re.compile(rf"(?i)(basic\s+)([{_B64_CHARS}]+=*)", re.ASCII)  # "İ" is no "i"
_MIN_CORE = 6
"""Shortest base64 core searched for; shorter secrets are still caught whole."""

_HTML_NAMES: Final = {**html.entities.codepoint2name, ord("'"): "apos"}


@functools.lru_cache(maxsize=4096)
def _char_pattern(char: str) -> str:
    """A regular expression for ``char`` in every form an echo may give it: as it is;
    JSON-escaped (``\\/``, ``\\"``, ``\\uXXXX`` in either hex case, a UTF-16 pair
    beyond the BMP; any number of backslashes, for text escaped twice); a Python
    ``\\xNN`` byte escape; an HTML entity (named, decimal or hex); percent-encoded
    UTF-8 in either hex case, ``+`` for a space."""
    code = ord(char)
    forms = [re.escape(char)]
    escapes: list[str] = []  # what follows the backslash(es) of an escape
    if code <= 0xFFFF:
        escapes.append(f"(?i:u{code:04x})")
    else:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        escapes.append(f"(?i:u{high:04x}\\\\+u{low:04x})")
    if char in "/\\\"'":
        escapes.append(re.escape(char))
    with contextlib.suppress(UnicodeEncodeError):
        raw = char.encode("utf-8")
        escapes.append("".join(f"(?i:x{b:02x})" + ("\\\\+" if i < len(raw) - 1 else "")
                               for i, b in enumerate(raw)))  # fmt: skip
        forms.append("".join(f"%(?i:{b:02x})" for b in raw))
    forms.append("\\\\+(?:" + "|".join(escapes) + ")")
    name = _HTML_NAMES.get(code)
    if name is not None:
        forms.append(f"&{name};")
    forms.append(f"&#0*{code};")
    forms.append(f"&#[xX]0*(?i:{code:x});")
    if char == " ":
        forms.append(r"\+")
    return "(?:" + "|".join(forms) + ")"


_ESCAPE_MARKS = ("\\", "%", "&")
_UNIT = r"(?:\\+(?i:u[0-9a-f]{4}|x[0-9a-f]{2})|%[0-9a-fA-F]{2})"
# Each branch starts with a plain character, so that the search skips straight to the
# next backslash, percent or ampersand.
_ESCAPE = re.compile(
    rf"\\[\\]*(?i:u[0-9a-f]{{4}}|x[0-9a-f]{{2}}){_UNIT}*|%[0-9a-fA-F]{{2}}{_UNIT}*"
    r"|\\[\\]*.|&#?\w{1,32};",
    re.DOTALL,
)


def _decode_run(run: str) -> str:
    """One run of escapes as the text it stands for: ``\\uXXXX`` UTF-16 units (pairs
    joined), ``\\xNN`` and ``%NN`` UTF-8 bytes."""
    units = re.findall(r"\\+(?i:u([0-9a-f]{4}))|\\+(?i:x([0-9a-f]{2}))|%([0-9a-fA-F]{2})", run)
    out: list[str] = []
    pending = bytearray()
    utf16 = bytearray()
    for unit, byte_x, byte_pct in units:
        if unit:
            if pending:
                out.append(pending.decode("utf-8", "replace"))
                pending.clear()
            utf16 += int(unit, 16).to_bytes(2, "big")
        else:
            if utf16:
                out.append(utf16.decode("utf-16-be", "replace"))
                utf16.clear()
            pending.append(int(byte_x or byte_pct, 16))
    if pending:
        out.append(pending.decode("utf-8", "replace"))
    if utf16:
        out.append(utf16.decode("utf-16-be", "replace"))
    return "".join(out)


def _decode_one(match: re.Match[str]) -> str:
    found = match.group(0)
    if found.startswith("&"):
        return html.unescape(found)
    if found.lstrip("\\")[:1] in "uUxX%" and len(found.lstrip("\\")) > 1:
        return _decode_run(found)
    return found[-1]  # \/ \" \\ and the like: the character escaped


def _decode_escapes(text: str) -> str:
    """``text`` with JSON, Python, HTML and URL escapes decoded (loosely: a filter for
    :meth:`Scrubber._may_hold_a_secret`, never shown to anyone)."""
    return _ESCAPE.sub(_decode_one, text)


def _any_form(value: str) -> str:
    """A regular expression matching ``value`` with each character in any of its forms
    (see :func:`_char_pattern`): one pattern for every encoding, mixed ones too."""
    return "".join(_char_pattern(char) for char in value)


def _textual_forms(value: str) -> set[str]:
    """The forms ``value`` takes as text: raw, URL-quoted, JSON- and repr-escaped (for
    per-request values, searched as they are)."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value)[1:-1].replace("/", "\\/"))
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    forms.add(repr(value)[1:-1])
    forms.add(html.escape(value))
    with contextlib.suppress(UnicodeEncodeError):
        forms.add(repr(value.encode("utf-8"))[2:-1])
    forms |= {re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    return {f for f in forms if f}


def _b64_cores(data: bytes) -> set[str]:
    """The base64 text that ``data`` yields wherever it sits in an encoded string.

    Base64 codes 3 bytes as 4 characters, so the characters around ``data`` depend on
    its neighbours (``base64(user + ":" + secret)`` depends on the user name). For each
    of the 3 offsets, the groups made only of ``data`` bytes are fixed: those are the
    cores, searched for in text and widened to the whole base64 token around them.
    """
    cores = set()
    for offset in range(3):
        lead = (3 - offset) % 3  # bytes of data completing the first, shared group
        body = data[lead:]
        whole = len(body) - len(body) % 3
        if whole <= 0:
            continue
        chunk = body[:whole]
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            core = encode(chunk).decode("ascii")
            if len(core) >= _MIN_CORE:
                cores.add(core)
    return cores


def _contains_secret(token: str, values: Iterable[str]) -> bool:
    """Whether ``token`` (or a prefix of it: text may follow a token without a break)
    decodes to text holding one of ``values``."""
    stripped = token.rstrip("=")
    ends = {len(token), *range(len(stripped), 1, -1)}
    for end in sorted(ends, reverse=True):
        candidate = token[:end].rstrip("=")
        if len(candidate) % 4 == 1:
            continue
        padded = (candidate + "=" * (-len(candidate) % 4)).encode("ascii")
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                text = decode(padded).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                continue
            if any(v in text for v in values):
                return True
    return False


@attrs.define(init=False)
class Scrubber:
    """Replaces a tenant's secrets with ``***`` in any text, in every form they take.

    Forms covered, each character of a secret in any of them (mixed forms too): the raw
    value; JSON-escaped (``\\/`` as PHP writes it, ``\\uXXXX`` for any character in
    either hex case, escaped twice or more); Python-repr-escaped; HTML-escaped (named,
    decimal and hex entities); percent-encoded (either hex case, ``+`` for a space);
    base64 (standard and URL-safe, padded or not, at any alignment, its ``/`` escaped
    in any of those ways), so an HTTP Basic token ``base64(user:secret)`` is replaced
    as a whole whatever the user name; and any ``Basic <token>`` whose decoded text
    holds a secret. The tenant's secrets are
    given at construction (or :meth:`add_secret`); values derived per request
    (signatures) are registered with :meth:`add`.
    """

    _values: set[str]
    _forms: set[str]
    _cores: set[str]
    _pattern: re.Pattern[str] | None
    _core_pattern: re.Pattern[str] | None
    _derived: dict[int, set[str]]
    _bases: set[str]
    _mask: str

    def __init__(self, values: Iterable[str | Secret] = (), *, mask: str = _MASK) -> None:
        """``mask`` replaces each form found (cassettes write ``REDACTED``)."""
        self._mask = mask
        self._values = set()
        self._forms = set()
        self._cores = set()
        self._pattern = None
        self._core_pattern = None
        self._derived = {}
        self._bases = set()
        for value in values:
            self.add_secret(value)

    def __repr__(self) -> str:
        return f"Scrubber({len(self._values)} secret(s))"

    @classmethod
    def for_credentials(cls, credentials: object) -> Scrubber:
        """A scrubber for every :class:`Secret` found in ``credentials`` (attrs, mapping…)."""
        return cls(secrets_in(credentials))

    def add_secret(self, value: str | Secret) -> None:
        """Scrub ``value`` in every form, base64 included. For a tenant's few credentials:
        each one added recompiles the patterns on the next scrub."""
        text = value.reveal() if isinstance(value, Secret) else value
        if not text or text in self._values:
            return
        self._values.add(text)
        self._bases.add(text)
        self._forms.add(text)
        with contextlib.suppress(UnicodeEncodeError):
            self._cores |= _b64_cores(text.encode("utf-8"))
        self._pattern = self._core_pattern = None

    def add(self, value: str | Secret) -> None:
        """Scrub a value derived from a secret (e.g. a per-request signature) too: raw,
        URL-quoted and JSON/repr-escaped. Cheap (no recompiling), so one can be added per
        request; a scrub costs about one set look-up per character per distinct length
        of the values added. Empty is ignored."""
        text = value.reveal() if isinstance(value, Secret) else value
        if not text or text in self._values:
            return
        self._values.add(text)
        for form in _textual_forms(text):
            self._derived.setdefault(len(form), set()).add(form)

    def _compiled(self) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
        # The longest first, so that a secret holding another is masked whole.
        if self._pattern is None and self._forms:
            ordered = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(_any_form, ordered)))
        if self._core_pattern is None and self._cores:
            ordered = sorted(self._cores, key=len, reverse=True)
            self._core_pattern = re.compile("|".join(map(_any_form, ordered)))
        return self._pattern, self._core_pattern

    def scrub(self, text: str) -> str:
        """``text`` with every known secret form replaced by ``***``."""
        if not self._values or not text:
            return text
        pattern, core_pattern = self._compiled()
        if "asic" in text or "ASIC" in text:
            text = _BASIC.sub(self._basic, text)
        if self._may_hold_a_secret(text):
            if core_pattern is not None and core_pattern.search(text):
                text = self._scrub_b64(text, core_pattern)
            if pattern is not None:
                text = pattern.sub(self._mask, text)
        if self._derived:
            text = self._scrub_derived(text)
        return text

    def _may_hold_a_secret(self, text: str) -> bool:
        """Whether ``text``, its escapes decoded, holds a secret or a base64 core of
        one: false means the patterns (which try every form of every character at
        every position) cannot match, and most text is answered by this alone."""
        literals = self._forms | self._cores
        if any(literal in text for literal in literals):
            return True
        if any(mark in value for value in self._forms for mark in _ESCAPE_MARKS):
            return True  # decoding cannot tell such a secret's own marks from escapes
        candidates = [text] if any(mark in text for mark in _ESCAPE_MARKS) else []
        if "+" in text and any(" " in value for value in self._forms):
            candidates.append(text.replace("+", " "))  # quote_plus: "+" is a space
        for candidate in candidates:
            decoded = _decode_escapes(candidate)
            if any(literal in decoded for literal in literals):
                return True
        return False

    def _scrub_derived(self, text: str) -> str:
        lengths = sorted(self._derived, reverse=True)
        if len(text) < lengths[-1]:
            return text
        sets = [(n, self._derived[n]) for n in lengths]
        out: list[str] = []
        last = position = 0
        end = len(text) - lengths[-1]
        while position <= end:
            for n, forms in sets:
                if text[position : position + n] in forms:
                    out.append(text[last:position])
                    out.append(self._mask)
                    position = last = position + n
                    break
            else:
                position += 1
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)

    def _basic(self, match: re.Match[str]) -> str:
        token = match.group(2)
        if _contains_secret(token, self._bases):
            return match.group(1) + self._mask
        return match.group(0)

    def _scrub_b64(self, text: str, core_pattern: re.Pattern[str]) -> str:
        out: list[str] = []
        last = 0
        position = 0
        while True:
            match = core_pattern.search(text, position)
            if match is None:
                break
            before = _B64_BEFORE.search(text, last, match.start())
            start = before.start() if before is not None else match.start()
            run = _B64_RUN.match(text, match.end())
            end = run.end() if run is not None else match.end()
            out.append(text[last:start])
            out.append(self._mask)
            last = position = end
        out.append(text[last:])
        return "".join(out)

    def scrub_obj(self, value: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, tuples, strings) with every string
        (keys too) scrubbed; other values are returned as they are."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, Mapping):
            return {
                (self.scrub(k) if isinstance(k, str) else k): self.scrub_obj(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub_obj(v) for v in value]
        return value


def secrets_in(value: object, _depth: int = 0) -> list[Secret]:
    """Every :class:`Secret` held by ``value``: attrs instances, mappings and sequences."""
    if _depth > 8:
        return []
    if isinstance(value, Secret):
        return [value]
    if isinstance(value, Mapping):
        items: Iterable[object] = value.values()
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    elif attrs.has(type(value)):
        items = (getattr(value, a.name) for a in attrs.fields(type(value)))  # type: ignore[arg-type]
    else:
        return []
    found: list[Secret] = []
    for item in items:
        found += secrets_in(item, _depth + 1)
    return found
