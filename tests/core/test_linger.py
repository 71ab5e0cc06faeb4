"""An open bulk batch goes out part-full only while the input is not keeping up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from contactsync_yespo import YespoEmulator

from contactsync import Client, Status
from contactsync.testing import EmulatorApp


def _config(linger: float) -> dict[str, Any]:
    return {"tenants": {"t": {"provider": "yespo", "http": {"batch_linger": linger},
                              "credentials": {"api_key": "yespo-demo-key"},
                              "options": {"mode": "bulk", "poll_interval": 0.0}}}}  # fmt: skip


def _row(n: int) -> dict[str, Any]:
    return {"external_id": f"e{n}", "first_name": "Ann", "email": f"ann.{n}@example.com"}


def _client(linger: float, emulator: YespoEmulator) -> Client:
    return Client(_config(linger), "t", emulator=EmulatorApp(emulator), sleep=lambda s: None)


def test_a_stalled_input_does_not_hold_its_open_batch() -> None:
    first_outcome = threading.Event()
    waited: list[bool] = []

    def rows() -> Iterator[dict[str, Any]]:
        yield from (_row(n) for n in range(3))
        # Only a part-full batch sent after batch_linger lets an outcome out now.
        waited.append(first_outcome.wait(timeout=60))
        yield _row(3)

    emulator = YespoEmulator()
    with _client(0.05, emulator) as client:
        statuses = []
        for outcome in client.upsert_many(rows()):
            first_outcome.set()
            statuses.append(outcome.status)
    assert waited == [True]
    assert statuses == [Status.WRITTEN] * 4


def test_a_list_is_sent_in_full_batches_however_slow_preparing_it_is() -> None:
    """Preparing 7,000 contacts takes far longer than a 1 ms linger: with the input all
    there, the batches still go out full (3,000 + 3,000 + 1,000)."""
    emulator = YespoEmulator()
    slow_rows = [_row(n) for n in range(7000)]
    started = time.monotonic()
    with _client(0.001, emulator) as client:
        outcomes = list(client.upsert_many(slow_rows))
    assert time.monotonic() - started > 0.001
    assert {o.status for o in outcomes} == {Status.WRITTEN}
    sizes = [len(s["body"]["contacts"]) for s in emulator.sessions.values()]
    assert sorted(sizes) == [1000, 3000, 3000]
