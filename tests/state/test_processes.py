"""Other processes: a writer killed at a random moment, and two writers at once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from contactsync._state import open_store
from tests.state import writer

ROOT = Path(__file__).resolve().parents[2]


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.state.writer", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_after_some_batches(url: str, tenant: str, rng: random.Random) -> int:
    """Start a looping writer, SIGKILL it at a random moment once it has confirmed a
    few batches; return the last batch it reported confirmed."""
    reported: list[int] = []
    with spawn("loop", url, tenant) as child:
        reader = threading.Thread(
            target=lambda: reported.extend(int(line) for line in child.stdout or ())
        )
        reader.start()
        deadline = time.monotonic() + 60
        while len(reported) < 3 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        reader.join(timeout=30)
        stderr = child.stderr.read() if child.stderr else ""
    assert child.returncode == -signal.SIGKILL, stderr
    assert reported, stderr
    return reported[-1]


@pytest.mark.parametrize("attempt", range(3))
def test_killed_writer_leaves_whole_batches(url: str, attempt: int) -> None:
    rng = random.Random(attempt)
    tenant = f"killed-{attempt}"
    last_reported = kill_after_some_batches(url, tenant, rng)

    with open_store(url) as store:
        summary = store.summary(tenant)
        complete = (summary.records - writer.COMMON) // writer.BATCH
        # Every batch is all or nothing: no partial batch, and batch n exists only
        # when every batch before it does (they were written in order).
        per_batch = writer.BATCH * complete + writer.COMMON
        assert summary.records in (per_batch, per_batch + writer.BATCH)
        keys = [e.key for b in range(complete + 1) for e in writer.loop_entries(b)]
        found = store.get_many(tenant, keys)
        batches = sorted({int(r.fingerprint or "-1") for r in found.values()})
        last = batches[-1]
        # Nothing that was reported confirmed is lost, and at most one more landed
        # (committed, killed before it printed).
        assert last in (last_reported, last_reported + 1)
        for batch in range(last + 1):
            entries = writer.loop_entries(batch)
            for entry in entries[: writer.BATCH]:
                record = found[entry.key]
                assert (record.fingerprint, record.remote_id, record.raw_hash) == (
                    str(batch),
                    f"{batch}|{entry.key}",
                    str(batch),
                )
                assert not record.in_flight
        # The common keys hold the last batch, all of them (one transaction).
        common = [found[f"common-{j}"] for j in range(writer.COMMON)]
        assert {r.fingerprint for r in common} == {str(last)}
        # What the kill interrupted is at most the next batch, marked in flight.
        flying = store.in_flight(tenant)
        assert {r.key for r in flying} <= {e.key for e in writer.loop_entries(last + 1)}
        assert all(r.fingerprint is None for r in flying if r.key.startswith("b"))


def test_two_processes_write_the_same_keys(url: str) -> None:
    open_store(url).close()  # both writers race on data, not on creating the schema
    rounds = 15
    start_at = time.time() + 2.0
    children = [spawn("race", url, "shared", name, str(rounds), str(start_at)) for name in "ab"]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip() == "done"

    with open_store(url) as store:
        shared = [f"shared-{j:04d}" for j in range(writer.SHARED)]
        own = [f"own-{w}-{r}-{j}" for w in "ab" for r in range(rounds) for j in range(writer.OWN)]
        found = store.get_many("shared", shared + own)
        assert len(found) == len(shared) + len(own)  # nothing lost
        for key in shared:
            record = found[key]
            token = record.fingerprint
            # Not torn: every column of a row comes from one writer's one confirm.
            assert (record.mapping_fingerprint, record.remote_id, record.raw_hash) == (
                token,
                f"{token}|{key}",
                token,
            )
            assert token in {f"{w}:{rounds - 1}" for w in "ab"} | {
                f"{w}:{r}" for w in "ab" for r in range(rounds)
            }
            assert not record.in_flight
        for w in "ab":
            for r in range(rounds):
                assert found[f"own-{w}-{r}-0"].fingerprint == f"{w}:{r}"
        assert store.summary("shared").in_flight == 0


def test_two_processes_create_a_new_store_at_once(url: str) -> None:
    start_at = time.time() + 2.0
    children = [spawn("race", url, "fresh", name, "1", str(start_at)) for name in "ab"]
    for child in children:
        _out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    with open_store(url) as store:
        assert store.summary("fresh").records == writer.SHARED + 2 * writer.OWN
