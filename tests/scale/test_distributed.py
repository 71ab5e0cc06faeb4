"""Acceptance of the scale-out: ``upsert --distributed`` of 20,000 rows on three real
``contactsync worker`` processes, a real Redis and PostgreSQL, and a loopback Yespo
emulator that enforces its documented window and faults 30% of requests; one worker
is killed with SIGKILL in the middle of the run. Run them alone with
``pytest -m scale_out``."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.acceptance import emulate
from tests.scale.cluster import workers, write_config
from tests.servers import PostgresServer

pytestmark = pytest.mark.scale_out

PEOPLE = 12_000
ROWS = 20_000
CHUNK = 1000


def _rows(seed: int) -> list[dict[str, Any]]:
    """``ROWS`` rows for at most ``PEOPLE`` people: most once, some twice in a row,
    some again far apart; each row of a person says which of their rows it is."""
    chooser = random.Random(seed)
    people = list(range(PEOPLE))
    order = people + [chooser.randrange(PEOPLE) for _ in range(ROWS - PEOPLE)]
    chooser.shuffle(order)
    # Adjacent repeats: a few rows are followed at once by the same person.
    for position in range(0, ROWS - 1, 97):
        order[position + 1] = order[position]
    seen: Counter[int] = Counter()
    rows = []
    for person in order:
        seen[person] += 1
        rows.append(
            {
                "external_id": f"person-{person}",
                "email": f"person{person}@example.com",
                "first_name": f"Row{seen[person]}",
                "last_name": f"P{person}",
            }
        )
    return rows


def _done_chunks(redis_url: str) -> int:
    return sum(1 for _ in redis.Redis.from_url(redis_url).scan_iter("contactsync:done:*"))


@pytest.mark.timeout(420)
def test_twenty_thousand_rows_on_three_workers_one_killed(
    tmp_path: Path, redis_url: str, postgres: PostgresServer
) -> None:
    rows = _rows(seed=18)
    source = tmp_path / "contacts.jsonl"
    # First line: bytes that are not UTF-8. The producer answers it (rejected) itself.
    broken = b'{"external_id": "x", "first_name": "\xff"}\n'
    source.write_bytes(broken + "".join(json.dumps(row) + "\n" for row in rows).encode())
    state = postgres.create_database("scale_acceptance")
    with emulate("yespo", "--fail-rate", "0.3", "--seed", "18") as url:
        config = write_config(
            tmp_path / "contactsync.toml",
            redis_url=redis_url,
            state_url=state,
            tenant="shop",
            provider="yespo",
            base_url=url,
            options={"poll_interval": 0.1},
            credentials={"api_key": "yespo-demo-key"},
            scale={"chunk_size": CHUNK, "shards": 12, "visibility_timeout": 10},
        )
        report = tmp_path / "report.json"
        failed = tmp_path / "failed.jsonl"
        with workers(config, tmp_path, count=3) as pool:
            run = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "contactsync",
                    "upsert",
                    "--config",
                    str(config),
                    "--tenant",
                    "shop",
                    "--distributed",
                    "--report",
                    str(report),
                    "--failed",
                    str(failed),
                    str(source),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            # Kill a worker once the run is well under way (chunks done, most not).
            deadline = time.monotonic() + 180
            while _done_chunks(redis_url) < 4 and run.poll() is None:
                assert time.monotonic() < deadline, pool.logs()
                time.sleep(0.05)
            killed_after = _done_chunks(redis_url)
            pool.kill(0)
            try:
                _, stderr = run.communicate(timeout=300)
            except subprocess.TimeoutExpired:
                run.kill()
                pytest.fail(f"the distributed run did not finish\n{pool.logs()}")
        stats = httpx.get(f"{url}/__emulator__/stats", timeout=30).json()
        stored = httpx.get(f"{url}/__emulator__/contacts", timeout=30).json()

    chunks = -(-ROWS // CHUNK)
    assert killed_after < chunks - 3, "the worker was killed too late to matter"
    assert run.returncode == 2, stderr  # the one rejected line
    outcomes = json.loads(report.read_text())["outcomes"]
    indexes = Counter(outcome["index"] for outcome in outcomes)
    assert sorted(indexes) == list(range(ROWS + 1))
    assert set(indexes.values()) == {1}
    by_index = {outcome["index"]: outcome for outcome in outcomes}
    assert by_index[0]["status"] == "rejected"
    assert by_index[0]["error"]["code"] == "unreadable_input"
    assert {by_index[i]["status"] for i in range(1, ROWS + 1)} <= {
        "created",
        "updated",
        "written",
        "unchanged",
        "skipped",
    }
    # A skipped row is an earlier row of a person whose later row in its chunk was
    # written (read ahead with the store): never for another reason.
    assert {
        by_index[i].get("reason") for i in range(1, ROWS + 1) if by_index[i]["status"] == "skipped"
    } <= {"superseded"}
    assert failed.read_bytes() == broken
    # The documented window (200 per second, all methods) was never exceeded.
    shared = next(limit for limit in stats["rate_limits"] if limit["name"] == "shared")
    assert shared["max_in_window"] <= shared["limit"]
    assert shared["rejected"] == 0
    assert stats["max_requests_per_second"] <= 200
    # Every person stored once, with their last row's data.
    last: dict[str, dict[str, Any]] = {row["external_id"]: row for row in rows}
    by_id = Counter(contact["externalCustomerId"] for contact in stored)
    assert set(by_id) == set(last)
    assert set(by_id.values()) == {1}
    for contact in stored:
        assert contact["firstName"] == last[contact["externalCustomerId"]]["first_name"]
