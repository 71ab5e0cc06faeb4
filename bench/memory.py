"""Peak memory of a CLI upsert with --report and --failed, and the time to its first
request, for sparse Yespo contacts (fields, custom fields and segments present at
random, so the input holds many field sets), at 100,000 and 1,000,000 contacts.

Run with ``make bench-large`` (``uv run python bench/memory.py [COUNT ...]``); writes
``bench/results-large.json``. The emulator runs in its own process; only the CLI's
memory is measured (VmHWM of the child process).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COUNTS = (100_000, 1_000_000)

CONFIG = """
[tenants.big]
provider = "yespo"
default_phone_region = "GB"
[tenants.big.credentials]
api_key = "yespo-demo-key"
[tenants.big.options]
mode = "bulk"
poll_interval = 0.05
[tenants.big.custom_fields]
loyalty = 1001
visits = 1002
[tenants.big.groups]
vip = "VIP"
news = "Newsletter"
"""

# Runs the CLI in this child, notes when the first request goes out, and prints the
# child's own peak RSS (VmHWM: ru_maxrss would survive exec from the parent).
CHILD = """
import atexit, sys, time
started = time.monotonic()
first = []
import contactsync._engine as engine
send = engine.Engine.send
async def timed(self, request, run=None):
    if not first:
        first.append(time.monotonic())
    return await send(self, request, run)
engine.Engine.send = timed
def report():
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print("BENCH", hwm, (first[0] - started) if first else -1, time.monotonic() - started,
          file=sys.stderr)
atexit.register(report)
from contactsync._cli import main
main(sys.argv[1:])
"""


def sparse(count: int, path: Path) -> None:
    rng = random.Random(7)
    with path.open("w") as out:
        for n in range(count):
            row: dict[str, Any] = {"external_id": f"s{n}", "email": f"s{n}@example{n % 89}.com"}
            if rng.random() < 0.5:
                row["first_name"] = f"F{n}"
            if rng.random() < 0.3:
                row["last_name"] = f"L{n}"
            if rng.random() < 0.3:
                row["phone"] = f"+4420{7946_0000 + n % 10_000_000:08d}"
            custom = {k: n % 50 for k in ("loyalty", "visits") if rng.random() < 0.3}
            if custom:
                row["custom_fields"] = custom
            groups = [g for g in ("vip", "news") if rng.random() < 0.2]
            if groups:
                row["groups"] = {"add": groups}
            out.write(json.dumps(row) + "\n")


def measure(count: int, work: Path) -> dict[str, float]:
    source = work / f"sparse-{count}.jsonl"
    sparse(count, source)
    config = work / "big.toml"
    config.write_text(CONFIG)
    emulator = subprocess.Popen(
        [sys.executable, "-m", "contactsync", "emulate", "yespo", "--port", "0",
         "--config", str(config), "--tenant", "big"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        url = emulator.stdout.readline().strip()
        run = subprocess.run(
            [sys.executable, "-c", CHILD, "upsert", "--config", str(config), "--tenant", "big",
             "--base-url", url, str(source), "--report", str(work / "report.json"),
             "--failed", str(work / "failed.jsonl")],
            capture_output=True, text=True, check=False, cwd=ROOT,
        )  # fmt: skip
    finally:
        emulator.terminate()
        emulator.wait(30)
    line = next(x for x in run.stderr.splitlines() if x.startswith("BENCH"))
    _, hwm, first, total = line.split()
    summary = json.loads((work / "report.json").read_text())["summary"]
    return {
        "contacts": count,
        "peak_rss_mb": round(int(hwm) / 1024, 1),
        "first_request_s": round(float(first), 2),
        "run_s": round(float(total), 1),
        "exit_code": run.returncode,
        "summary": summary,
    }


def main() -> None:
    counts = [int(a) for a in sys.argv[1:]] or list(COUNTS)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            result = measure(count, Path(tmp))
            print(json.dumps(result))
            results.append(result)
    Path(__file__).with_name("results-large.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
