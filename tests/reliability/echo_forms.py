"""The forms a platform may echo a secret in, made with the standard library only (never
with the scrubber under test), and a strategy for secrets worth trying."""

from __future__ import annotations

import base64
import html
import json
import re
import string
from collections.abc import Callable
from urllib.parse import quote, quote_plus

from hypothesis import strategies as st


def _low_hex(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _json(value: str) -> str:
    return json.dumps(value)[1:-1]


def _json_php(value: str) -> str:
    """``json_encode`` as PHP writes it by default: ``/`` escaped as ``\\/``."""
    return _json(value).replace("/", "\\/")


def _json_every_char(value: str, upper: bool) -> str:
    """Every character as ``\\uXXXX`` (a UTF-16 pair beyond the BMP), as some encoders
    do for ``& < > ' "`` (PHP's ``JSON_HEX_*``) or for everything."""
    units = value.encode("utf-16-be")
    return "".join(
        "\\u" + format(int.from_bytes(units[i : i + 2], "big"), "04X" if upper else "04x")
        for i in range(0, len(units), 2)
    )


def _b64(alphabet: str, pad: bool, prefix: str = "") -> Callable[[str], str]:
    encode = base64.b64encode if alphabet == "standard" else base64.urlsafe_b64encode

    def form(value: str) -> str:
        token = encode((prefix + value).encode("utf-8")).decode("ascii")
        return token if pad else token.rstrip("=")

    return form


# Basic auth's user part: none, short, and one of each length modulo 3 (it shifts the
# secret's bytes against base64's groups of 3).
USERS = ("", "u", "us", "usr", "apikey")

ENCODERS: dict[str, Callable[[str], str]] = {
    "raw": lambda v: v,
    "json": _json,
    "json_unicode": lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
    "json_php_slash": _json_php,
    "json_twice": lambda v: json.dumps(json.dumps(v))[3:-3],
    "json_php_twice": lambda v: json.dumps(_json_php(v))[1:-1],
    "json_u_lower": lambda v: _json_every_char(v, upper=False),
    "json_u_upper": lambda v: _json_every_char(v, upper=True),
    "html": html.escape,
    "html_no_quotes": lambda v: html.escape(v, quote=False),
    "quote": lambda v: quote(v, safe=""),
    "quote_default_safe": quote,
    "quote_lower_hex": lambda v: _low_hex(quote(v, safe="")),
    "quote_plus": quote_plus,
    "quote_plus_lower_hex": lambda v: _low_hex(quote_plus(v)),
    **{
        f"base64_{alphabet}_{'padded' if pad else 'unpadded'}"
        + (f"_basic_{user or 'empty'}" if basic else ""): _b64(alphabet, pad, f"{user}:" if basic else "")
        for alphabet in ("standard", "urlsafe")
        for pad in (True, False)
        for basic in (False, True)
        for user in (USERS if basic else ("",))
    },
    "base64_php_slash": lambda v: _b64("standard", True)(v).replace("/", "\\/"),
    "base64_basic_php_slash": lambda v: _b64("standard", True, "apikey:")(v).replace("/", "\\/"),
}  # fmt: skip
"""Name to encoder: each gives the whole form a secret takes in an echo."""

_ALPHABET = string.ascii_letters + string.digits + "/&<>\"'+%=?#:;@!$-_.~ ,\\" + "éß€ÿ😀"

secrets = st.text(st.sampled_from(_ALPHABET), min_size=8, max_size=24).filter(
    # A credential never starts or ends with a space (the configuration refuses it).
    lambda s: s == s.strip()
)
"""Secrets of the characters that encoders change (and some that they keep)."""


def every_form(secret: str) -> dict[str, str]:
    return {name: encode(secret) for name, encode in ENCODERS.items()}
