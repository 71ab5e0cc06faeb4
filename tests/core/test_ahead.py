"""Validation ahead in a child process only warms caches: a run's outcomes are the same
with it as without it, bad values included, and the child never outlives the run."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from contactsync_yespo import YespoEmulator

from contactsync import Client, Outcome, _ahead, _normalize
from contactsync._ahead import AheadValidator, lookups
from contactsync._run import FAST_CHUNK
from contactsync.testing import EmulatorApp


def _records(count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n in range(count):
        row: dict[str, Any] = {"external_id": f"e{n % 150}", "first_name": f"F{n}"}
        if n % 7 == 0:
            row["email"] = f"not-an-address-{n}"  # refused: rejected, never cached
        elif n % 11 == 0:
            row["email"] = f"zoë.{n}@bücher.example"
        else:
            row["email"] = f"  Person.{n}@Example{n % 5}.com "
        if n % 5 == 0:
            row["phone"] = f"020 7946 {n % 10_000:04d}"  # national: completed with GB
        elif n % 13 == 0:
            row["phone"] = "+44 12"  # refused
        else:
            row["phone"] = f"0044 20 7946 {n % 10_000:04d}"
        rows.append(row)
    return rows


def _config() -> dict[str, Any]:
    return {"tenants": {"t": {"provider": "yespo", "default_phone_region": "GB",
                              "credentials": {"api_key": "yespo-demo-key"},
                              "options": {"mode": "bulk", "poll_interval": 0.0}}}}  # fmt: skip


def _run(rows: Any) -> tuple[list[tuple[int, str, str | None, str | None]], list[str]]:
    _normalize.clear_caches()
    ticks = iter(range(10**9))
    emulator = YespoEmulator(clock=lambda: next(ticks) * 0.001)
    with Client(_config(), "t", emulator=EmulatorApp(emulator), sleep=lambda s: None) as client:
        outcomes: list[Outcome] = list(client.upsert_many(rows))
    stored = sorted(
        json.dumps({k: v for k, v in c.items() if k not in ("id", "created", "modified")},
                   sort_keys=True, default=str)
        for c in emulator.contacts()
    )  # fmt: skip
    return sorted(
        (
            o.index,
            o.status.value,
            o.error.code if o.error else None,
            o.error.field if o.error else None,
        )
        for o in outcomes
    ), stored


def _wait_for(emails: list[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(_normalize._emails.get(e) is not None for e in emails):
            return
        time.sleep(0.01)
    raise AssertionError("the child never answered")


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Start the child at once, in small groups; record every validator made."""
    made: list[Any] = []

    class Recorded(AheadValidator):
        def __init__(self, region: str | None) -> None:
            super().__init__(region)
            self.started = False

        def _start(self) -> bool:
            self.started = super()._start()
            made.append(self)
            return self.started

        def _send_group(self) -> None:
            # Wait for the child's answer, so the run finds it (else the run, faster
            # than a child still starting, would check every value itself).
            emails = [e for e in lookups(self._group, "GB")[0] if "@" in e]
            super()._send_group()
            if self._groups % 4:
                _wait_for(emails)

    monkeypatch.setattr(_ahead, "START_AFTER", 0)
    monkeypatch.setattr(_ahead, "GROUP", 8)
    monkeypatch.setattr("contactsync._run.AheadValidator", Recorded)
    monkeypatch.setattr("contactsync._run.enabled", lambda: True)
    return made


@pytest.mark.parametrize("as_iterator", [False, True])
def test_outcomes_are_the_same_with_and_without_the_child(
    started: list[Any], monkeypatch: pytest.MonkeyPatch, as_iterator: bool
) -> None:
    rows = _records(600)
    with_child = _run(iter(rows) if as_iterator else rows)
    assert len(started) == 1  # one child for the run ...
    assert started[0].started
    assert started[0]._child is None  # ... stopped when it ended
    monkeypatch.setattr("contactsync._run.enabled", lambda: False)
    without = _run(iter(rows) if as_iterator else rows)
    assert len(started) == 1
    assert with_child == without
    outcomes, stored = without
    assert {status for _, status, _, _ in outcomes} >= {"rejected", "written"}
    assert len(stored) == 150


def test_the_child_answers_what_the_validators_do() -> None:
    _normalize.clear_caches()
    validator = AheadValidator("GB")
    rows = _records(_ahead.START_AFTER + 4 * _ahead.GROUP)
    try:
        for row in rows:
            validator.feed(row)
        validator.flush()
        child = validator._child
        assert child is not None
        emails, phones = lookups(rows[_ahead.START_AFTER :], "GB")
        # Groups 1-3 go to the child, group 4 is left to the run.
        sent_emails, _ = lookups(rows[_ahead.START_AFTER : _ahead.START_AFTER + 3 * 128], "GB")
        _wait_for([e for e in sent_emails if "@" in e])
        for email in emails:
            held = _normalize._emails.get(email)
            if held is not None:
                assert held == _normalize.validate_email(email)
        for value, region in phones:
            held = _normalize._phones.get((value, region))
            if held is not None:
                assert held == _normalize.validate_phone(value, region)
        assert all(_normalize._emails.get(e) is not None for e in sent_emails if "@" in e)
        left = lookups(rows[_ahead.START_AFTER + 3 * 128 :], "GB")[0]
        assert all(_normalize._emails.get(e) is None for e in left)
        assert all(_normalize._emails.get(e) is None for e in emails if "@" not in e)
    finally:
        validator.close()
    assert child.poll() is not None


def test_no_child_is_started_once_closed() -> None:
    validator = AheadValidator(None)
    validator.close()
    for row in _records(_ahead.START_AFTER + 2 * _ahead.GROUP):
        validator.feed(row)
    validator.flush()
    assert validator._child is None
    assert not validator._start()


def test_no_child_on_one_usable_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pinned to one core (``taskset``, a cpuset), the child would share it with the run."""
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this system")
    monkeypatch.delenv(_ahead.ENV, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1})
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert not _ahead.enabled()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert _ahead.enabled()
    monkeypatch.setenv(_ahead.ENV, "0")
    assert not _ahead.enabled()


def test_a_paused_validator_starts_no_child_and_sends_nothing() -> None:
    validator = AheadValidator(None)
    try:
        validator.pause(True)
        for row in _records(_ahead.START_AFTER + 2 * _ahead.GROUP):
            validator.feed(row)
        validator.flush()
        assert validator._child is None
        assert validator._groups == 0
        validator.pause(False)
        for row in _records(_ahead.GROUP):
            validator.feed(row)
        assert validator._child is not None
        assert validator._groups == 1
    finally:
        validator.close()


def test_a_run_with_a_store_validates_ahead_only_rows_it_must_prepare(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A first run (nothing stored) starts the child once the store's first look-up
    settled nothing; a repeat run whose rows are all settled by their raw hash never
    starts it. Outcomes are the same either way."""
    starts: list[int] = []

    class Counted(AheadValidator):
        def _start(self) -> bool:
            starts.append(self._seen)
            return super()._start()

    monkeypatch.setattr(_ahead, "START_AFTER", 0)
    monkeypatch.setattr(_ahead, "GROUP", 8)
    monkeypatch.setattr("contactsync._pump.LOOK_AHEAD", 16)
    monkeypatch.setattr("contactsync._run.AheadValidator", Counted)
    monkeypatch.setattr("contactsync._run.enabled", lambda: True)
    rows = [
        {"external_id": f"p{n}", "email": f"p.{n}@example.com", "phone": f"+4420794{n:05d}"}
        for n in range(1200)
    ]
    url = f"sqlite:///{tmp_path / 'state.db'}"
    ticks = iter(range(10**9))
    app = EmulatorApp(YespoEmulator(clock=lambda: next(ticks) * 0.001))

    def run() -> list[str]:
        with Client(_config(), "t", emulator=app, sleep=lambda s: None, state=url) as client:
            return [o.status.value for o in client.upsert_many(json.loads(json.dumps(rows)))]

    assert set(run()) == {"written"}
    assert len(starts) == 1
    # Started after the first look-up: the rows shown before it were not sent ahead.
    assert starts[0] > FAST_CHUNK
    assert run() == ["unchanged"] * len(rows)
    assert len(starts) == 1
