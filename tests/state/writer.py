"""A child process writing to a store, for the durability and concurrency tests.

``python -m tests.state.writer loop URL TENANT`` confirms batch after batch (printing
each batch number once ``confirm`` returned) until it is killed or ``LOOP_LIMIT``.
``python -m tests.state.writer race URL TENANT WRITER ROUNDS START_AT`` waits until
the wall clock reaches ``START_AT``, then marks and confirms the shared keys and its
own keys ``ROUNDS`` times, with values that all carry its own token.
"""

from __future__ import annotations

import sys
import time

from contactsync._state import Confirmed, open_store

BATCH = 50
COMMON = 10
SHARED = 200
OWN = 20
LOOP_LIMIT = 20_000


def loop_entries(batch: int) -> list[Confirmed]:
    token = str(batch)
    keys = [f"b{batch:06d}-{j}" for j in range(BATCH)] + [f"common-{j}" for j in range(COMMON)]
    # One platform id per key: a write at an id another key holds would end that key's
    # confirmation (the store's rule for two keys of one record).
    return [
        Confirmed(key, token, "m", "updated", remote_id=f"{token}|{key}", raw_hash=token)
        for key in keys
    ]


def race_entries(writer: str, round_: int) -> list[Confirmed]:
    token = f"{writer}:{round_}"
    keys = [f"shared-{j:04d}" for j in range(SHARED)]
    keys += [f"own-{writer}-{round_}-{j}" for j in range(OWN)]
    return [
        Confirmed(key, token, token, "updated", remote_id=f"{token}|{key}", raw_hash=token)
        for key in keys
    ]


def main(argv: list[str]) -> int:
    mode, url, tenant = argv[:3]
    store = open_store(url)
    if mode == "loop":
        run_id = store.begin_run(tenant)
        for batch in range(LOOP_LIMIT):
            entries = loop_entries(batch)
            store.mark_in_flight(tenant, run_id, [e.key for e in entries])
            store.confirm(tenant, entries)
            print(batch, flush=True)
        return 0
    if mode == "race":
        writer, rounds, start_at = argv[3], int(argv[4]), float(argv[5])
        time.sleep(max(0.0, start_at - time.time()))
        run_id = store.begin_run(tenant)
        for round_ in range(rounds):
            entries = race_entries(writer, round_)
            # Reversed for one writer: the store must sort, or the two would deadlock.
            if writer == "b":
                entries.reverse()
            store.mark_in_flight(tenant, run_id, [e.key for e in entries])
            store.confirm(tenant, entries)
        store.close()
        print("done", flush=True)
        return 0
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
