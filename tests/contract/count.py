"""Count the contract violations of the three contract runs, by kind.

    uv run --frozen python -m tests.contract.count

Runs the same inputs as the contract tests (Yespo real time and bulk, Gleantap) and
prints, for each, the exchanges and the request and response violations grouped by
kind. The tests assert zero; this is for reporting what a change fixed or broke.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import httpx
from contactsync_gleantap import GleantapEmulator

from contactsync.testing import EmulatorApp, EmulatorTransport
from tests.contract import test_gleantap, test_yespo
from tests.contract.generate import contacts
from tests.contract.openapi import Capture, Contract, gleantap_contract, yespo_contract
from tests.providers.engines import upsert_sync


def kind(violation: str) -> str:
    """A violation without the values that make each one unique (ids, addresses)."""
    text = re.sub(r"importstatus/\w+", "importstatus/{session}", violation)
    text = re.sub(r"/\d+", "/{id}", text)
    text = re.sub(r"email: '[^']*'", "email: <address>", text)
    text = re.sub(r"\{'dedupeValue.*", "<one mapping entry> is not of type 'array'", text)
    text = re.sub(r"\{'id': \d+.*", "<one group> is not of type 'array'", text)
    text = re.sub(r"members/\{id\}/(\w+): None.*", r"members/\1: None is not a string", text)
    return text[:170]


def report(
    name: str, contract: Contract, exchanges: Iterable[tuple[httpx.Request, httpx.Response]]
) -> None:
    exchanges = list(exchanges)
    requests, responses = contract.violations(exchanges)
    print(f"{name}: {len(exchanges)} exchanges, {len(requests)} request violations, "
          f"{len(responses)} response violations")  # fmt: skip
    for text, count in Counter(map(kind, requests + responses)).most_common():
        print(f"  {count:6d}  {text}")


def main() -> None:
    yespo, gleantap = yespo_contract(), gleantap_contract()
    if yespo is None or gleantap is None:
        raise SystemExit("published specs not found (set CONTACTSYNC_SPECS)")
    for mode, seed in (("realtime", 11), ("bulk", 12)):
        run = test_yespo.Run()
        run.upsert(test_yespo._rows(seed), mode)
        report(f"yespo {mode}", yespo, run.capture.exchanges)
    capture = Capture(EmulatorTransport(EmulatorApp(GleantapEmulator())))
    rows = contacts(test_gleantap.COUNT, seed=21, custom_fields=test_gleantap.FIELDS)
    upsert_sync(test_gleantap.config(), "g", capture, rows)
    report("gleantap", gleantap, capture.exchanges)


if __name__ == "__main__":
    main()
