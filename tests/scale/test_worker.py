"""The worker's chunk runner and the shard lease, on a real Redis and PostgreSQL: a
chunk delivered twice is sent once; a copy finding its shard leased waits; a dead
holder's lease expires; a chunk whose rows the platform confirmed sends nothing
when it runs again after its result was lost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from contactsync_yespo import DEMO_API_KEY, YespoEmulator

from contactsync import load_config
from contactsync._emulator import EmulatorApp, serve_in_thread
from contactsync._scale._lease import ShardLease
from contactsync._scale._worker import ChunkRunner, ShardBusy, done_key, lease_key
from tests.scale.cluster import write_config
from tests.servers import PostgresServer, free_port

pytestmark = pytest.mark.scale_out


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    return connection


def test_a_held_lease_is_not_taken_and_outlives_its_ttl(client: redis.Redis) -> None:
    with ShardLease(client, "lease:a", ttl=1.0):
        time.sleep(1.5)  # longer than the ttl: the heartbeat keeps it
        other = ShardLease(client, "lease:a", ttl=1.0)
        assert not other.try_acquire()
    other = ShardLease(client, "lease:a", ttl=1.0)
    assert other.try_acquire()
    with other:
        pass


def test_a_dead_holders_lease_expires(client: redis.Redis) -> None:
    # A holder that stopped renewing (its worker died): the lock alone, no heartbeat.
    assert client.lock("lease:b", timeout=1.0).acquire(blocking=False)
    waiting = ShardLease(client, "lease:b", ttl=1.0)
    assert not waiting.try_acquire()
    started = time.monotonic()
    with waiting:
        assert time.monotonic() - started < 5


def _rows(count: int) -> list[tuple[int, Any]]:
    return [
        (10 + n, {"external_id": f"w-{n}", "email": f"w{n}@example.com", "first_name": "A"})
        for n in range(count)
    ]


@pytest.fixture
def platform() -> Iterator[tuple[EmulatorApp, str]]:
    app = EmulatorApp(YespoEmulator(import_polls=0))
    server, url = serve_in_thread(app)
    try:
        yield app, url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def runner(
    tmp_path: Path,
    redis_url: str,
    postgres: PostgresServer,
    platform: tuple[EmulatorApp, str],
    client: redis.Redis,
) -> Iterator[ChunkRunner]:
    path = write_config(
        tmp_path / "c.toml",
        redis_url=redis_url,
        state_url=postgres.create_database(f"worker_{time.monotonic_ns()}"),
        tenant="shop",
        provider="yespo",
        base_url=platform[1],
        options={"poll_interval": 0.05},
        credentials={"api_key": DEMO_API_KEY},
    )
    chunk_runner = ChunkRunner(load_config(path), redis_client=client)
    try:
        yield chunk_runner
    finally:
        chunk_runner.close()


def test_a_chunk_delivered_twice_is_sent_once(
    runner: ChunkRunner, platform: tuple[EmulatorApp, str]
) -> None:
    app, _ = platform
    rows = _rows(5)
    first = runner.run(run_id="r1", tenant="shop", shard=0, chunk=0, rows=rows)
    assert sorted(o["index"] for o in first["outcomes"]) == [10, 11, 12, 13, 14]
    assert {o["status"] for o in first["outcomes"]} == {"written"}  # Yespo says only ids
    sent = app.stats()["requests"]
    again = runner.run(run_id="r1", tenant="shop", shard=0, chunk=0, rows=rows)
    assert again == first
    assert app.stats()["requests"] == sent


def test_a_copy_finding_its_shard_leased_waits(runner: ChunkRunner, client: redis.Redis) -> None:
    with ShardLease(client, lease_key("r2", 3)), pytest.raises(ShardBusy):
        runner.run(run_id="r2", tenant="shop", shard=3, chunk=7, rows=_rows(2))
    assert client.get(done_key("r2", 7)) is None


def test_a_rerun_after_a_lost_result_sends_only_what_was_not_confirmed(
    runner: ChunkRunner, client: redis.Redis, platform: tuple[EmulatorApp, str]
) -> None:
    app, _ = platform
    rows = _rows(4)
    runner.run(run_id="r3", tenant="shop", shard=0, chunk=0, rows=rows[:2])
    client.delete(done_key("r3", 1))
    sent = app.stats()["requests"]
    # The worker died after the platform confirmed rows 10 and 11 (the state store
    # knows) but before the chunk's result was kept: the chunk runs again.
    result = runner.run(run_id="r3", tenant="shop", shard=0, chunk=1, rows=rows)
    statuses = {o["index"]: o["status"] for o in result["outcomes"]}
    assert statuses == {10: "unchanged", 11: "unchanged", 12: "written", 13: "written"}
    assert app.stats()["requests"] > sent
    assert len(app.emulator.contacts()) == 4


def test_a_chunk_that_cannot_run_keeps_each_rows_external_id(
    tmp_path: Path, client: redis.Redis, platform: tuple[EmulatorApp, str]
) -> None:
    # A state store nobody listens on: the chunk as a whole cannot run.
    path = write_config(
        tmp_path / "c.toml",
        redis_url=f"redis://127.0.0.1:{client.connection_pool.connection_kwargs['port']}/0",
        state_url=f"postgresql://u:PgSecret-9912@127.0.0.1:{free_port()}/db",
        tenant="shop",
        provider="yespo",
        base_url=platform[1],
        credentials={"api_key": DEMO_API_KEY},
    )
    chunk_runner = ChunkRunner(load_config(path), redis_client=client)
    rows = [*_rows(3), (13, {"email": "none@example.com"})]
    try:
        result = chunk_runner.run(run_id="r-pg", tenant="shop", shard=0, chunk=0, rows=rows)
    finally:
        chunk_runner.close()
    outcomes = result["outcomes"]
    assert [o["index"] for o in outcomes] == [10, 11, 12, 13]
    assert [o["external_id"] for o in outcomes] == ["w-0", "w-1", "w-2", None]
    assert {o["error"]["code"] for o in outcomes} == {"request_failed"}
    assert "PgSecret" not in json.dumps(result)
