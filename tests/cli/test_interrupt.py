"""Ctrl-C in the middle of a run: every contact accounted for, files complete, exit 130."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from contactsync_gleantap import DEMO_API_KEY, DEMO_APP_ID, DEMO_SECRET_KEY, GleantapEmulator

from contactsync.testing import EmulatorApp, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
CONFIG = f"""
[tenants.g]
provider = "gleantap"
default_phone_region = "GB"
[tenants.g.credentials]
api_key = "{DEMO_API_KEY}"
secret_key = "{DEMO_SECRET_KEY}"
[tenants.g.options]
app_id = "{DEMO_APP_ID}"
[tenants.g.http]
concurrency = 4
"""


class SlowGleantap(GleantapEmulator):
    """Answers each write after a short pause, so a run of 3,000 lasts long enough to
    be interrupted in the middle."""

    def handle(self, request):  # type: ignore[no-untyped-def]
        time.sleep(0.004)
        return super().handle(request)


def test_sigint_mid_run_accounts_for_every_contact(tmp_path: Path) -> None:
    rows = [
        {
            "external_id": f"i{n}",
            "first_name": f"F{n}",
            "last_name": "L",
            "email": f"i{n}@example.com",
        }
        for n in range(3000)
    ]
    contacts = tmp_path / "in.jsonl"
    contacts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "c.toml").write_text(CONFIG)
    report, failed = tmp_path / "report.json", tmp_path / "failed.jsonl"
    emulator = SlowGleantap()
    server, url = serve_in_thread(EmulatorApp(emulator))
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "contactsync", "upsert", "--config", str(tmp_path / "c.toml"),
             "--tenant", "g", "--base-url", url, str(contacts),
             "--report", str(report), "--failed", str(failed)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Wait (a safety net, not a speed bound) until the run is well under way.
        deadline = time.monotonic() + 120
        while len(emulator.contacts()) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=120)
        stored = {c["user_id"] for c in emulator.contacts()}
    finally:
        server.shutdown()
        server.server_close()
    assert child.returncode == 130, stderr
    data = json.loads(report.read_text())
    outcomes = data["outcomes"]
    assert sorted(o["index"] for o in outcomes) == list(range(3000))
    written = {o["external_id"] for o in outcomes if o["status"] in ("created", "updated")}
    not_written = [o for o in outcomes if o["status"] == "failed"]
    assert written == stored  # every outcome says what the platform holds
    assert not_written, "the interrupt came after the run had ended"
    assert {o["error"]["code"] for o in not_written} == {"interrupted"}
    lines = [json.loads(line) for line in failed.read_text().splitlines()]
    assert sorted(line["external_id"] for line in lines) == sorted(
        o["external_id"] for o in not_written
    )
    assert 200 <= len(stored) < 3000
