"""The tenant lock: one run of a tenant per state store; a second one is refused
(naming the holder's run id) or waits; the lock goes with the run, however it ends."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from contactsync_gleantap import DEMO_API_KEY, DEMO_APP_ID, DEMO_SECRET_KEY

from contactsync import Client, Status, TenantLocked
from contactsync._cli import main
from contactsync._state import StateError, StateStore, open_store

ROOT = Path(__file__).resolve().parents[2]
HOLDER = "0123456789abcdef0123456789abcdef"
CONFIG = f"""
[tenants.g]
provider = "gleantap"
base_url = "emulator"
default_phone_region = "GB"
[tenants.g.credentials]
api_key = "{DEMO_API_KEY}"
secret_key = "{DEMO_SECRET_KEY}"
[tenants.g.options]
app_id = "{DEMO_APP_ID}"
"""
TENANT = {
    "tenants": {
        "g": {
            "provider": "gleantap",
            "base_url": "emulator",
            "credentials": {"api_key": DEMO_API_KEY, "secret_key": DEMO_SECRET_KEY},
            "options": {"app_id": DEMO_APP_ID},
        }
    }
}


def _rows(count: int) -> list[dict[str, str]]:
    return [
        {"external_id": f"k{n}", "first_name": f"F{n}", "last_name": f"L{n}",
         "email": f"k{n}@example.com"}
        for n in range(count)
    ]  # fmt: skip


def test_a_second_lock_is_refused_and_names_the_holder(store: StateStore) -> None:
    first, second = store.tenant_lock("g"), store.tenant_lock("g")
    assert first.try_acquire(HOLDER) == (True, None)
    try:
        assert second.try_acquire("f" * 32) == (False, HOLDER)
        other = store.tenant_lock("h")  # another tenant: its own lock
        assert other.try_acquire("e" * 32) == (True, None)
        other.release()
    finally:
        first.release()
    assert second.try_acquire("f" * 32) == (True, None)
    second.release()
    second.release()  # idempotent


_HOLD = """
import sys, time
from contactsync._state import open_store
store = open_store(sys.argv[1])
got = store.tenant_lock("g").try_acquire(sys.argv[2])
print("held" if got[0] else "refused", flush=True)
time.sleep(600)
"""


def test_a_killed_holder_releases_the_lock(store: StateStore, url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLD, url, HOLDER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        lock = store.tenant_lock("g")
        assert lock.try_acquire("f" * 32) == (False, HOLDER)
    finally:
        child.kill()  # SIGKILL: no clean-up of any kind runs
        child.wait(30)
        if child.stdout is not None:
            child.stdout.close()
    # The OS drops the file lock at once; PostgreSQL ends the session when it sees
    # the connection closed. Polled with a generous safety net, not a speed bound.
    deadline = time.monotonic() + 60
    while lock.try_acquire("f" * 32) != (True, None):
        assert time.monotonic() < deadline, "the killed holder's lock was never released"
        time.sleep(0.05)
    lock.release()


@pytest.fixture
def client(url: str) -> Iterator[Client]:
    with Client(TENANT, "g", state=url) as opened:
        yield opened


def test_a_client_run_is_refused_while_another_runs(client: Client, url: str) -> None:
    assert client.state is not None
    first = client.upsert_many(iter(_rows(3)))
    next(first)  # the run has begun: it holds the lock
    last_run = client.state.summary("g").last_run
    assert last_run is not None
    with Client(TENANT, "g", state=url) as other:
        with pytest.raises(TenantLocked, match=last_run.run_id) as refused:
            list(other.upsert_many(_rows(3)))
        assert refused.value.run_id == last_run.run_id
        assert "--wait" in str(refused.value)
        assert [o.status for o in first] != []  # the first run goes on to its end
        # Ended: the lock is free again.
        assert {o.status for o in other.upsert_many(_rows(3))} == {Status.UNCHANGED}


def test_the_lock_is_released_when_a_run_fails(client: Client) -> None:
    def boom(outcome: Any) -> None:
        raise RuntimeError("the caller's bug")

    with pytest.raises(RuntimeError, match="bug"):
        list(client.upsert_many(_rows(3), on_outcome=boom))
    assert len(list(client.upsert_many(_rows(3)))) == 3


@contextlib.contextmanager
def _released_once_waiting(lock: Any) -> Iterator[list[str]]:
    """Release ``lock`` when the run says it waits for its holder, not before: the run
    has then really found the lock held (no timer racing the run's start). Yields the
    wait messages seen."""
    said: list[str] = []

    class Release(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if "waiting for run" in message:
                said.append(message)
                lock.release()

    handler = Release()
    logger = logging.getLogger("contactsync")
    logger.addHandler(handler)
    try:
        yield said
    finally:
        logger.removeHandler(handler)
        lock.release()


def test_lock_wait_waits_for_the_holder(client: Client) -> None:
    assert client.state is not None
    holder = client.state.tenant_lock("g")
    assert holder.try_acquire(HOLDER)[0]
    with _released_once_waiting(holder) as said:
        outcomes = list(client.upsert_many(_rows(2), lock_wait=None))
    assert len(outcomes) == 2
    assert len(said) == 1, said  # told once, naming the holder
    assert f"waiting for run {HOLDER} to end" in said[0]


def test_workers_of_a_distributed_run_take_no_lock(url: str) -> None:
    with open_store(url) as store:
        holder = store.tenant_lock("g")
        assert holder.try_acquire(HOLDER)[0]
        try:
            with Client(TENANT, "g", state=url, tenant_lock=False) as worker:
                assert len(list(worker.upsert_many(_rows(2)))) == 2
        finally:
            holder.release()


def _cli(tmp_path: Path, url: str, *extra: str, command: str = "upsert") -> Any:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in _rows(3)))
    args = [command, "--config", str(config), "--tenant", "g", "--state", url, *extra]
    return CliRunner().invoke(main, [*args, str(source)])


@pytest.fixture
def held(store: StateStore) -> Iterator[Any]:
    lock = store.tenant_lock("g")
    assert lock.try_acquire(HOLDER)[0]
    try:
        yield lock
    finally:
        lock.release()


def test_cli_refuses_a_second_run(tmp_path: Path, url: str, held: Any) -> None:
    result = _cli(tmp_path, url)
    assert result.exit_code == 1, result.output
    assert f"run {HOLDER}" in result.output
    assert "--wait" in result.output


def test_cli_wait_runs_once_the_holder_ends(tmp_path: Path, url: str, held: Any) -> None:
    with _released_once_waiting(held) as said:
        result = _cli(tmp_path, url, "--wait")
    assert said, result.output
    assert result.exit_code == 0, result.output
    assert f"waiting for run {HOLDER} to end" in result.output
    assert "created 3" in result.output  # the run went ahead: each contact written


def test_cli_wait_seconds_gives_up(tmp_path: Path, url: str, held: Any) -> None:
    result = _cli(tmp_path, url, "--wait=1")
    assert result.exit_code == 1, result.output
    assert f"still being synced by run {HOLDER}" in result.output
    assert "after waiting 1 s" in result.output


def test_cli_plan_takes_no_lock(tmp_path: Path, url: str, held: Any) -> None:
    result = _cli(tmp_path, url, command="plan")
    assert result.exit_code == 0, result.output


def test_a_distributed_run_holds_one_lock_its_producers(
    postgres: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("celery")
    from contactsync.celery import _producer  # noqa: PLC0415 - the celery extra

    url = postgres.create_database(f"lock_{time.monotonic_ns()}")
    config = {
        **TENANT,
        "state": {"url": url},
        "scale": {"broker": "redis://127.0.0.1:1/0"},  # never reached here
    }
    seen: list[tuple[bool, str | None]] = []

    def produce(*args: Any, run_id: str, **kwargs: Any) -> Iterator[Any]:
        # While the producer sends the chunks, the tenant is locked under its run id.
        with open_store(url) as store:
            probe = store.tenant_lock("g")
            seen.append(probe.try_acquire("f" * 32))
            seen.append((False, run_id))
            probe.release()
        yield from ()

    monkeypatch.setattr(_producer, "_produce", produce)
    assert list(_producer.upsert_distributed(None, config, "g", _rows(2))) == []
    (refused, holder), (_, run_id) = seen
    assert not refused
    assert holder == run_id
    with open_store(url) as store:  # released at the end
        lock = store.tenant_lock("g")
        assert lock.try_acquire("f" * 32) == (True, None)
        # And a second distributed run is refused while the tenant is locked.
        with pytest.raises(TenantLocked, match=r"run f{32}"):
            list(_producer.upsert_distributed(None, config, "g", _rows(2)))
        lock.release()


def test_cancelling_a_run_stops_its_wait(client: Client) -> None:
    assert client.state is not None
    holder = client.state.tenant_lock("g")
    assert holder.try_acquire(HOLDER)[0]
    try:
        run = client.upsert_many(_rows(2), lock_wait=None)  # would wait for ever
        errors: list[BaseException] = []

        def drain() -> None:
            try:
                list(run)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=drain)
        thread.start()
        run.cancel()  # Ctrl-C in the command line
        thread.join(60)
        assert not thread.is_alive()
    finally:
        holder.release()
    (error,) = errors
    assert isinstance(error, TenantLocked)
    assert f"interrupted while waiting for run {HOLDER}" in str(error)


def test_forget_is_refused_while_a_run_holds_the_lock(tmp_path: Path, url: str) -> None:
    assert _cli(tmp_path, url).exit_code == 0
    common = ["--config", str(tmp_path / "c.toml"), "--tenant", "g", "--state", url]
    with open_store(url) as store:
        lock = store.tenant_lock("g")
        assert lock.try_acquire(HOLDER)[0]
        try:
            refused = CliRunner().invoke(main, ["state", *common, "--forget"])
        finally:
            lock.release()
        assert refused.exit_code == 1
        assert f"run {HOLDER}" in refused.output
        assert store.summary("g").records == 3
    forgot = CliRunner().invoke(main, ["state", *common, "--forget"])
    assert "forgot 3" in forgot.output


def _sqlite_store(path: Path) -> StateStore:
    return open_store(f"sqlite:///{path}")


def test_every_name_of_one_sqlite_file_meets_one_lock(tmp_path: Path) -> None:
    """A symlink, a ``..`` and a relative spelling of the database all reach the
    holder's lock (a second run through any of them is refused)."""
    real = tmp_path / "state.db"
    holder = _sqlite_store(real)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.db").symlink_to(real)
    lock = holder.tenant_lock("g")
    assert lock.try_acquire(HOLDER) == (True, None)
    try:
        for name in (tmp_path / "link.db", tmp_path / "sub" / ".." / "state.db"):
            other = _sqlite_store(name)
            try:
                assert other.tenant_lock("g").try_acquire("f" * 32) == (False, HOLDER), name
            finally:
                other.close()
    finally:
        lock.release()
        holder.close()


def test_a_hard_linked_sqlite_database_is_refused(tmp_path: Path) -> None:
    """Two hard links are two paths to one file that no path resolution can tie
    together: a run through either is refused before it takes a lock."""
    real = tmp_path / "state.db"
    _sqlite_store(real).close()
    (tmp_path / "hard.db").hardlink_to(real)
    for name in (real, tmp_path / "hard.db"):
        with pytest.raises(StateError, match="2 hard links"):
            _sqlite_store(name)
    # Linked after the store was opened: the lock refuses before taking anything.
    store = _sqlite_store(tmp_path / "late.db")
    (tmp_path / "late-link.db").hardlink_to(tmp_path / "late.db")
    try:
        with pytest.raises(StateError, match="2 hard links"):
            store.tenant_lock("g").try_acquire(HOLDER)
    finally:
        store.close()


def test_cli_refuses_a_run_through_a_hard_link(tmp_path: Path) -> None:
    real = tmp_path / "state.db"
    _sqlite_store(real).close()
    (tmp_path / "hard.db").hardlink_to(real)
    result = _cli(tmp_path, f"sqlite:///{tmp_path / 'hard.db'}")
    assert result.exit_code == 1, result.output
    assert "hard links" in result.output
