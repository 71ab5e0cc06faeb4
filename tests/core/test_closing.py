"""A run stopped without waiting for its requests (``cancel(force=True)``, a second
Ctrl-C) lets the process end: a request left waiting on a platform that never answers
must not keep it alive until the read timeout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import asyncio, socket, sys, threading
from contactsync import AsyncClient, Client

received = threading.Event()
listener = socket.create_server(("127.0.0.1", 0))

def hold(conn):  # reads the request and never answers
    conn.recv(65536)
    received.set()
    while conn.recv(65536):
        pass

def serve():
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=hold, args=(conn,), daemon=True).start()

threading.Thread(target=serve, daemon=True).start()
config = {"tenants": {"g": {
    "provider": "gleantap",
    "base_url": f"http://127.0.0.1:{listener.getsockname()[1]}",
    "default_phone_region": "GB",
    "credentials": {"api_key": "gleantap-demo-key", "secret_key": "gleantap-demo-secret"},
    "options": {"app_id": "demo-app"},
    # Far beyond the test's own safety net: only a request abandoned for good lets
    # the process end in time.
    "http": {"concurrency": 2, "timeout": 3600, "attempt_timeout": 3600},
}}}
rows = [{"external_id": f"x{n}", "email": f"x{n}@example.com", "first_name": "A",
         "last_name": "B"} for n in range(4)]

def stop(run):
    assert received.wait(60)
    run.cancel(force=True)

if sys.argv[1] == "async":
    async def main():
        async with AsyncClient(config, "g") as client:
            run = client.upsert_many(rows)
            asyncio.get_running_loop().run_in_executor(None, stop, run)
            return [o async for o in run]
    outcomes = asyncio.run(main())
else:
    with Client(config, "g") as client:
        run = client.upsert_many(rows)
        threading.Thread(target=stop, args=(run,), daemon=True).start()
        outcomes = list(run)
print(sorted(o.index for o in outcomes), sorted({o.error.code.value for o in outcomes}))
"""


@pytest.mark.parametrize("face", ["sync", "async"])
def test_a_forced_stop_lets_the_process_end(face: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, face],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,  # a safety net, not a speed bound: the requests wait an hour
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "[0, 1, 2, 3] ['interrupted', 'outcome_unknown']"
