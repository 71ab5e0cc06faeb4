"""Stable fingerprints of JSON-like payloads and raw input records.

:func:`fingerprint` hashes what was (or would be) written: two payloads that serialize
to the same JSON with sorted keys have the same fingerprint, whatever their key order.
Values orjson cannot write natively are given a tagged, unambiguous form first: bytes
(``["\\x00bytes", base64]``), decimals (``["\\x00decimal", str]``), sets (sorted by
their encoded elements) and attrs instances (their fields). Integers beyond 64 bits,
which orjson refuses, go through the standard library with the same rules. Non-finite
floats are outside the domain: JSON has no way to write them (orjson writes ``null``),
and the model refuses them in every field (``must be a finite number``), so no payload
holds one.

Both hashes are BLAKE2b with a 16-byte digest (32 hex characters), personalized so a
fingerprint and a raw hash of the same bytes never coincide.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

import attrs
import orjson

_DIGEST_SIZE: Final = 16
_PERSON_FINGERPRINT: Final = b"contactsync.fp"
_PERSON_RAW: Final = b"contactsync.raw"
_OPTIONS: Final = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
# Copied for each hash: a copy costs a third of making one with its parameters, which
# shows when every record of a run is hashed. Never updated itself, so any thread may copy.
_FINGERPRINT: Final = hashlib.blake2b(digest_size=_DIGEST_SIZE, person=_PERSON_FINGERPRINT)
_RAW: Final = hashlib.blake2b(digest_size=_DIGEST_SIZE, person=_PERSON_RAW)


def _default(value: Any) -> Any:
    """The JSON form of a value orjson does not write natively."""
    if isinstance(value, bytes | bytearray | memoryview):
        return ["\x00bytes", base64.b64encode(bytes(value)).decode("ascii")]
    if isinstance(value, decimal.Decimal):
        return ["\x00decimal", str(value)]
    if isinstance(value, set | frozenset):
        return sorted(value, key=_canonical)
    if isinstance(value, Mapping):
        return dict(value)
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=False)
    raise TypeError(f"cannot fingerprint a value of type {type(value).__name__}")


def _stdlib_default(value: Any) -> Any:
    """:func:`_default` plus what orjson writes natively and ``json`` does not."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return _default(value)


def _canonical(value: Any) -> bytes:
    """Compact JSON with sorted keys: the bytes that are hashed."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        if isinstance(exc.__cause__, TypeError) and "cannot fingerprint" in str(exc.__cause__):
            raise exc.__cause__ from None
        # Integers beyond 64 bits: the standard library writes them, with the same rules.
        text = json.dumps(
            value,
            default=_stdlib_default,
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return text.encode("utf-8")


def fingerprint(obj: Any) -> str:
    """A stable hash (32 hex characters) of a JSON-like payload.

    Independent of mapping key order; bytes, dates and times, decimals, UUIDs, enums,
    sets, tuples and attrs instances are accepted. Raises :class:`TypeError` for any
    other type, never hashing a ``repr`` that could change between runs.
    """
    digest = _FINGERPRINT.copy()
    digest.update(_canonical(obj))
    return digest.hexdigest()


def raw_hash(record: Mapping[str, Any] | bytes) -> str:
    """A stable hash of one raw input record: its exact bytes (a JSON line, a CSV row),
    or a parsed mapping hashed like :func:`fingerprint` (key order independent).

    Only a fast path: a record whose raw hash differs may still map to the same payload,
    which :func:`fingerprint` then tells.
    """
    digest = _RAW.copy()
    digest.update(record if isinstance(record, bytes | bytearray) else _canonical(record))
    return digest.hexdigest()
