"""``upsert --distributed`` when Redis goes away: a broker that refuses us is one
line naming ``[scale] broker`` (never its password) before any input is read; a Redis
restarted without persistence in the middle of a run still leaves one outcome per
row, the summary and exit code 2 at worst, and no traceback."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import redis

from tests.acceptance import emulate, stored
from tests.scale.cluster import workers, write_config
from tests.servers import PostgresServer, free_port

ROWS = [
    {"external_id": f"p{n % 1500}", "email": f"p{n % 1500}@example.com", "first_name": f"R{n}"}
    for n in range(2000)
]


@contextmanager
def _redis(port: int, root: Path, password: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(root)]
    args += ["--appendonly", "no"] + (["--requirepass", password] if password else [])
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "redis-server did not answer"
            assert process.poll() is None, "redis-server exited"
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(64):
                    break
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


def _upsert(config: Path, source: Path, report: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "contactsync", "upsert", "--config", str(config)]
    command += ["--tenant", "shop", "--distributed", "--report", str(report), str(source)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _config(
    path: Path, broker: str, state: str, base_url: str, visibility_timeout: float = 10
) -> Path:
    return write_config(
        path,
        redis_url=broker,
        state_url=state,
        tenant="shop",
        provider="yespo",
        base_url=base_url,
        options={"poll_interval": 0.1},
        credentials={"api_key": "yespo-demo-key"},
        scale={"chunk_size": 100, "shards": 4, "visibility_timeout": visibility_timeout},
    )


def test_an_unreachable_broker_is_one_line_before_input_is_read(tmp_path: Path) -> None:
    config = _config(
        tmp_path / "c.toml",
        f"redis://127.0.0.1:{free_port()}/0",
        "postgresql://u:p@127.0.0.1:1/db",
        "http://127.0.0.1:1",
    )
    report = tmp_path / "report.json"
    run = _upsert(config, tmp_path / "does-not-exist.jsonl", report)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    assert "[scale] broker" in stderr
    assert "Traceback" not in stderr + stdout
    assert not report.exists()


@pytest.mark.scale_out
def test_a_wrong_broker_password_is_named_but_never_shown(tmp_path: Path) -> None:
    port = free_port()
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(ROWS[0]) + "\n")
    with _redis(port, tmp_path, password="Right-7781"):
        for broker in (
            f"redis://:Wrong-4410%20%20@127.0.0.1:{port}/0",
            f"redis://:Wrong-4410  @127.0.0.1:{port}/0",  # trailing whitespace, unquoted
        ):
            config = _config(
                tmp_path / "c.toml", broker, "postgresql://u:p@127.0.0.1:1/db", "http://127.0.0.1:1"
            )
            run = _upsert(config, source, tmp_path / "report.json")
            stdout, stderr = run.communicate(timeout=120)
            assert run.returncode == 1, stderr
            assert "[scale] broker" in stderr
            assert "Wrong-4410" not in stdout + stderr
            assert "Traceback" not in stderr
            assert len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.scale_out
@pytest.mark.timeout(400)
def test_redis_restarted_mid_run_leaves_one_outcome_per_row(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    port = free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    report = tmp_path / "report.json"
    state = postgres.create_database("redis_outage")
    with emulate("yespo") as url:
        config = _config(tmp_path / "c.toml", broker, state, url)
        with _redis(port, tmp_path) as first, workers(config, tmp_path, count=2) as pool:
            run = _upsert(config, source, report)
            deadline = time.monotonic() + 180
            while not any(redis.Redis(port=port).scan_iter("contactsync:done:*")):
                assert time.monotonic() < deadline, pool.logs()
                assert run.poll() is None, pool.logs()
                time.sleep(0.05)
            first.terminate()
            first.wait(timeout=10)
            time.sleep(1)  # Redis away for a moment, then back empty
            with _redis(port, tmp_path):
                try:
                    _, stderr = run.communicate(timeout=300)
                except subprocess.TimeoutExpired:
                    run.kill()
                    pytest.fail(f"the producer did not end\n{pool.logs()}")
    assert run.returncode in (0, 2), stderr
    assert "Traceback" not in stderr
    assert "failed" in stderr  # the summary was printed
    outcomes = json.loads(report.read_text())["outcomes"]
    assert Counter(o["index"] for o in outcomes) == Counter(range(len(ROWS)))
    for outcome in outcomes:
        assert outcome["status"] in {"created", "updated", "written", "unchanged", "failed"}, (
            outcome
        )
        if outcome["status"] == "failed":
            assert outcome["error"]["code"] in {"outcome_unknown", "request_failed"}, outcome
            assert outcome["error"]["retryable"], outcome


@pytest.mark.scale_out
@pytest.mark.timeout(400)
def test_redis_gone_for_good_ends_the_run_with_every_row_accounted_for(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    port = free_port()
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    report = tmp_path / "report.json"
    state = postgres.create_database("redis_gone")
    with emulate("yespo") as url:
        config = _config(tmp_path / "c.toml", f"redis://127.0.0.1:{port}/0", state, url, 5)
        with _redis(port, tmp_path) as server, workers(config, tmp_path, count=2) as pool:
            run = _upsert(config, source, report)
            deadline = time.monotonic() + 180
            while not any(redis.Redis(port=port).scan_iter("contactsync:done:*")):
                assert time.monotonic() < deadline, pool.logs()
                assert run.poll() is None, pool.logs()
                time.sleep(0.05)
            server.terminate()
            server.wait(timeout=10)
            try:
                _, stderr = run.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                run.kill()
                pytest.fail("the producer did not give up")
    assert run.returncode == 2, stderr
    assert "Traceback" not in stderr
    assert "not_sent" in stderr  # the summary names the rows never queued
    outcomes = json.loads(report.read_text())["outcomes"]
    assert Counter(o["index"] for o in outcomes) == Counter(range(len(ROWS)))
    codes = Counter(o["error"]["code"] for o in outcomes if o["status"] == "failed")
    assert codes["outcome_unknown"] > 0
    assert codes["not_sent"] > 0
    assert set(codes) <= {"outcome_unknown", "not_sent", "request_failed"}
    by_index = {o["index"]: o for o in outcomes}
    assert all(by_index[i]["external_id"] == row["external_id"] for i, row in enumerate(ROWS))


@pytest.mark.scale_out
@pytest.mark.timeout(400)
def test_redis_emptied_without_the_producer_seeing_it_down_is_noticed(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """A restart quicker than the producer's calls, played as a FLUSHALL: none of its
    calls fails, and the chunks it queued are gone. It notices, sends them again, and
    the run ends as if nothing had happened."""
    port = free_port()
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    report = tmp_path / "report.json"
    state = postgres.create_database("redis_flushed")
    with emulate("yespo") as url:
        config = _config(tmp_path / "c.toml", f"redis://127.0.0.1:{port}/0", state, url)
        with _redis(port, tmp_path):
            client = redis.Redis(port=port)
            run = _upsert(config, source, report)
            deadline = time.monotonic() + 180
            while client.llen("celery") < 4:  # every shard's first chunk queued, no worker yet
                assert time.monotonic() < deadline, "the first chunks were not queued"
                assert run.poll() is None, run.communicate()
                time.sleep(0.05)
            client.flushall()
            with workers(config, tmp_path, count=2) as pool:
                try:
                    _, stderr = run.communicate(timeout=300)
                except subprocess.TimeoutExpired:
                    run.kill()
                    pytest.fail(f"the producer waited for chunks Redis had lost\n{pool.logs()}")
        people = stored(url)
    assert run.returncode == 0, stderr
    assert "Traceback" not in stderr
    outcomes = json.loads(report.read_text())["outcomes"]
    assert Counter(o["index"] for o in outcomes) == Counter(range(len(ROWS)))
    assert {o["status"] for o in outcomes} <= {"created", "updated", "written", "unchanged"}
    assert len(people) == len({row["external_id"] for row in ROWS})
