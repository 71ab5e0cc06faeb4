"""The CLI with a state store: --state, --full, `contactsync state`, and resuming a run
killed with SIGKILL."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import attrs
from click.testing import CliRunner
from contactsync_gleantap import DEMO_API_KEY, DEMO_APP_ID, DEMO_SECRET_KEY, GleantapEmulator

from contactsync._cli import main
from contactsync._state import StateError, open_store
from contactsync.testing import serve_in_thread
from tests.writes import WritesCounted

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
"""


def _rows(count: int, tag: str = "") -> list[dict[str, str]]:
    return [
        {"external_id": f"k{n}", "first_name": f"F{n}", "last_name": f"L{n}{tag}",
         "email": f"k{n}@example.com"}
        for n in range(count)
    ]  # fmt: skip


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_upsert_with_state_then_state_and_forget(tmp_path: Path, url: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.replace("[tenants.g]\n", '[tenants.g]\nbase_url = "emulator"\n', 1))
    source = _write(tmp_path / "in.jsonl", _rows(5))
    common = ["--config", str(config), "--tenant", "g"]
    runner = CliRunner()
    # One emulator per CLI run (base_url = "emulator"): the state is what carries over.
    first = runner.invoke(main, ["upsert", *common, "--state", url, str(source)])
    assert first.exit_code == 0, first.output
    # New user_ids: looked up first (how many look-ups is Gleantap's business), then
    # created.
    assert "created 5" in first.output
    second = runner.invoke(main, ["upsert", *common, "--state", url, str(source)])
    assert "unchanged 5" in second.output
    assert "requests 0" in second.output
    full = runner.invoke(main, ["upsert", *common, "--state", url, "--full", str(source)])
    # Known ids: written at once, one request each, no look-up.
    assert "updated 5" in full.output
    assert "requests 5" in full.output
    shown = runner.invoke(main, ["state", *common, "--state", url])
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    assert summary["records"] == 5
    assert summary["last_run"]["counts"]["updated"] == 5
    forgot = runner.invoke(main, ["state", *common, "--state", url, "--forget"])
    assert "forgot 5" in forgot.output
    again = runner.invoke(main, ["upsert", *common, "--state", url, str(source)])
    assert "created 5" in again.output


WRITTEN = ("created", "updated", "written")


def _written(by_status: dict[str, int]) -> int:
    return sum(n for status, n in by_status.items() if status in WRITTEN)


def _confirmed(url: str) -> int:
    """Contacts the store holds as written (0 while the child has not created it)."""
    try:
        with open_store(url, read_only=True) as store:
            return _written(dict(store.summary("g").by_status))
    except StateError:
        return 0


@attrs.frozen
class _Resumed:
    emulator: GleantapEmulator
    confirmed: dict[str, int]
    """The store's records by last status when the first run was killed."""
    killed_sent: int
    """Writes (``newContact``) the killed run sent."""
    resent: int
    """Writes the resumed run sent (look-ups not counted: each person the store does
    not know is looked up first, however many look-ups that takes)."""


def _kill_and_resume(
    tmp_path: Path, url: str, rows: list[dict[str, str]], stop_at: int
) -> _Resumed:
    """Run ``rows`` through the CLI with the store at ``url``, SIGKILL it once it sent
    ``stop_at`` writes and the store holds a confirmed outcome, then run it again."""
    source = _write(tmp_path / "in.jsonl", rows)
    (tmp_path / "c.toml").write_text(CONFIG)
    emulator = GleantapEmulator()
    app = WritesCounted(emulator)
    server, base = serve_in_thread(app)
    command = [sys.executable, "-m", "contactsync", "upsert", "--config",
               str(tmp_path / "c.toml"), "--tenant", "g", "--base-url", base,
               "--state", url, str(source)]  # fmt: skip
    try:
        child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120  # a safety net, not a speed bound
        # Mid-run: past a random number of requests, with some outcomes confirmed.
        while time.monotonic() < deadline and not (app.writes >= stop_at and _confirmed(url) > 0):
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        with open_store(url) as store:
            confirmed = dict(store.summary("g").by_status)
        before = app.writes
        rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        resent = app.writes - before
    finally:
        server.shutdown()
        server.server_close()
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    return _Resumed(emulator, confirmed, before, resent)


def test_a_run_killed_with_sigkill_resumes_without_duplicates(tmp_path: Path, url: str) -> None:
    # Each new person costs look-ups before the write; the kill point counts writes, and
    # 3,000 people leave at least half the run after it.
    count = 3_000
    rows = _rows(count)
    resumed = _kill_and_resume(tmp_path, url, rows, random.Random(5).randint(300, 1_500))
    done = _written(resumed.confirmed)
    stored = resumed.emulator.contacts()
    assert Counter(Counter(c["user_id"] for c in stored).values()) == {1: count}
    by_id = {c["user_id"]: c for c in stored}
    for row in rows:
        assert by_id[row["external_id"]]["last_name"] == row["last_name"]
    assert 0 < done < count
    # Only what the store had not confirmed went again (the unconfirmed remainder,
    # which includes what was in flight when the process died).
    assert resumed.resent <= count - done


def test_a_killed_run_of_several_rows_per_person_resumes_with_the_last_rows(
    tmp_path: Path, url: str
) -> None:
    # Three rows per person, shuffled: the killed run wrote only last rows (the earlier
    # ones are skipped as superseded), and the resumed run sends only the people the
    # store had not confirmed, each once, with their last row.
    people = 1_000
    rows = [row for tag in ("-a", "-b", "-c") for row in _rows(people, tag)]
    random.Random(9).shuffle(rows)
    last = {row["external_id"]: row for row in rows}
    resumed = _kill_and_resume(tmp_path, url, rows, random.Random(6).randint(100, 500))
    confirmed = _written(resumed.confirmed)
    # Every write of the killed run was a person's last row: never more than one each.
    assert resumed.killed_sent <= people
    assert 0 < confirmed < people
    assert resumed.resent <= people - confirmed
    stored = resumed.emulator.contacts()
    assert Counter(Counter(c["user_id"] for c in stored).values()) == {1: people}
    for contact in stored:
        assert contact["last_name"] == last[contact["user_id"]]["last_name"]
