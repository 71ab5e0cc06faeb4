"""Benchmarks (``make bench``; never run by the tests).

Writes ``bench/results.json`` and prints a table. Each figure is measured in the
same run, on generated contacts that all have an email and a phone.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import email_validator
import phonenumbers

from contactsync import _normalize, contact_from_record

COUNT = 20_000


def records(count: int) -> Iterator[dict[str, str]]:
    for n in range(count):
        yield {
            "external_id": f"cus-{n}",
            "first_name": f"First{n}",
            "last_name": f"Last{n}",
            "email": f"person.{n}@example{n % 97}.com",
            "phone": f"+4420794{n % 100000:05d}",
        }


def best_of(runs: int, work: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    data = list(records(COUNT))

    def validators_only() -> None:
        for row in data:
            email_validator.validate_email(row["email"], check_deliverability=False)
            phonenumbers.format_number(
                phonenumbers.parse(row["phone"], None), phonenumbers.PhoneNumberFormat.E164
            )

    def build_contacts() -> None:
        # Measure cold: the normalizers' caches would otherwise hide the validators' cost.
        _normalize.normalize_email.cache_clear()
        _normalize.normalize_phone.cache_clear()
        for row in data:
            contact_from_record(row)

    baseline = best_of(3, validators_only)
    ours = best_of(3, build_contacts)
    results = {
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "contacts": COUNT,
        "contacts_per_s": round(COUNT / ours),
        "overhead_vs_validators": round(ours / baseline, 3),
    }
    Path(__file__).with_name("results.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
