"""The child process of :mod:`._ahead`: one JSON line in (``{"emails": [...], "phones":
[[value, region], ...]}``), one line out with what validated (``{"emails": [[value,
normalized], ...], "phones": [[value, region, normalized], ...]}``). Refused values are
left out: the run checks those itself and reports them."""

from __future__ import annotations

import sys
from typing import Any

import orjson

from ._errors import ContactError
from ._normalize import validate_email, validate_phone


def answer(message: dict[str, Any]) -> dict[str, list[list[Any]]]:
    emails: list[list[Any]] = []
    phones: list[list[Any]] = []
    for value in message["emails"]:
        try:
            emails.append([value, validate_email(value)])
        except ContactError:
            continue
    for value, region in message["phones"]:
        try:
            phones.append([value, region, validate_phone(value, region)])
        except ContactError:
            continue
    return {"emails": emails, "phones": phones}


def main() -> None:
    for line in sys.stdin.buffer:
        sys.stdout.buffer.write(orjson.dumps(answer(orjson.loads(line))) + b"\n")
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
