"""Coarse keys: the state key as a platform may compare it when it matches records.

A state key (``spec=value``, the values of a multi-field spec joined by ``\\x1f``) is
exact: it never merges two values a platform could hold as two, because a remote id is
stored under it. But a platform may still land two exact keys on one record: most
compare an address's letter case away (none documents it). What keeps an older row from
being written over a newer one, and a confirmation from outliving a write to the same
record under another key, must compare people that coarsely: the whole address
lower-cased. Only letter case is folded, never ``ß`` against ``ss`` (``str.lower``, not
``casefold``): the two stay two people, and both rows are written. Every other value
(external ids, names, E.164 phones) stays exact; names are NFC on input already.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=65536)
def coarse_key(key: str) -> str:
    """``key`` with each email value lower-cased (the key itself when it has none)."""
    spec, eq, value = key.partition("=")
    if not eq or "email" not in spec:
        return key
    names = spec.split("+")
    values = value.split("\x1f")
    if len(names) != len(values):
        return key
    return (
        spec
        + "="
        + "\x1f".join(v.lower() if n == "email" else v for n, v in zip(names, values, strict=True))
    )
