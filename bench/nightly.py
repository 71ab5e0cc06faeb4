"""The nightly sync: 1,000,000 contacts to Yespo through the CLI with a state store,
then the same input again with 1% of it changed (``nightly_1m_s``, target ≤ 60 s).

Run with ``make bench-large`` (``uv run python bench/nightly.py [COUNT]``); writes
``bench/results-nightly.json``. The emulator (``contactsync emulate yespo``) runs in
its own process; each run is a fresh ``contactsync upsert`` process with a SQLite
state file and a ``--report``, timed from start to exit. The first run writes every
contact (bulk, 3,000 a request) and fills the store; the second finds 99% unchanged
from the store alone and writes the 1% that changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COUNT = 1_000_000
CHANGED_EVERY = 100

CONFIG = """
[state]
url = "sqlite:///{state}"

[tenants.nightly]
provider = "yespo"
default_phone_region = "GB"
[tenants.nightly.credentials]
api_key = "yespo-demo-key"
[tenants.nightly.options]
mode = "bulk"
poll_interval = 0.05
"""


def write_input(path: Path, count: int, changed: bool) -> None:
    """``count`` contacts; with ``changed``, every hundredth has a new last name."""
    with path.open("w") as out:
        for n in range(count):
            last = f"Moved{n}" if changed and n % CHANGED_EVERY == 0 else f"Last{n}"
            row = {
                "external_id": f"cus-{n}",
                "first_name": f"First{n}",
                "last_name": last,
                "email": f"person.{n}@example{n % 97}.com",
                "phone": f"+4420{7946_0000 + n % 10_000_000:08d}",
            }
            out.write(json.dumps(row) + "\n")


def upsert(config: Path, url: str, source: Path, report: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "contactsync", "upsert", "--config", str(config),
         "--tenant", "nightly", "--base-url", url, str(source), "--report", str(report)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(f"upsert exited {run.returncode}: {run.stderr[-2000:]}")
    return elapsed, json.loads(report.read_text())["summary"]


def measure(count: int, work: Path) -> dict[str, Any]:
    first_input, second_input = work / "first.jsonl", work / "second.jsonl"
    write_input(first_input, count, changed=False)
    write_input(second_input, count, changed=True)
    config = work / "nightly.toml"
    config.write_text(CONFIG.format(state=work / "state.db"))
    emulator = subprocess.Popen(
        [sys.executable, "-m", "contactsync", "emulate", "yespo", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().strip()
        first_s, first = upsert(config, url, first_input, work / "first.json")
        second_s, second = upsert(config, url, second_input, work / "second.json")
    finally:
        emulator.terminate()
        emulator.wait(60)
    changed = len(range(0, count, CHANGED_EVERY))
    assert first["updated"] + first["created"] == count, first
    assert second["unchanged"] == count - changed, second
    assert second["updated"] + second["created"] == changed, second
    return {
        "contacts": count,
        "changed": changed,
        "nightly_1m_s": round(second_s, 1),
        "first_run_s": round(first_s, 1),
        "second_run": second,
        "first_run": first,
        "target": "nightly_1m_s <= 60",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
    }


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else COUNT
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(count, Path(tmp))
    print(json.dumps(result))
    Path(__file__).with_name("results-nightly.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
