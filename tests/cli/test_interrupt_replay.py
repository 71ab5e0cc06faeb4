"""SIGTERM / Ctrl-C with a state store, then replaying ``--failed`` after a newer run:
every line of the file carries its order, no person's earlier row is offered again, and
the replay moves nobody back to older data. A signal during start-up still gives exit
130 and both files complete.

The timing is the test's: the emulator holds one write until the test has seen the
run stop taking input (its ``--failed`` file shows an ``interrupted`` row), and the
start-up signal comes while the command is still reading its input from a pipe the
test holds open. Waits are bounded safety nets, never speed assumptions."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from contactsync_gleantap import DEMO_API_KEY, DEMO_APP_ID, DEMO_SECRET_KEY, GleantapEmulator

from contactsync.testing import EmulatorApp, serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 300
ROWS_EACH = 3
CONFIG = f"""
[tenants.g]
provider = "gleantap"
[tenants.g.credentials]
api_key = "{DEMO_API_KEY}"
secret_key = "{DEMO_SECRET_KEY}"
[tenants.g.options]
app_id = "{DEMO_APP_ID}"
[tenants.g.custom_fields]
loyalty = "loyalty"
[tenants.g.http]
concurrency = 1
"""
SAFETY = 120.0
"""Seconds any wait may take before the test gives up (never reached when it passes)."""


class GatedGleantap(GleantapEmulator):
    """Holds the ``hold_at``-th write (``newContact``) until ``release`` is set, and sets
    ``held`` when it arrives: the run is then mid-way, with that write in flight."""

    def __init__(self, hold_at: int | None = None) -> None:
        super().__init__()
        self.hold_at = hold_at
        self.writes = 0
        self.held = threading.Event()
        self.release = threading.Event()

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/newContact"):
            self.writes += 1
            if self.writes == self.hold_at:
                self.held.set()
                self.release.wait(SAFETY)
        return super().handle(request)


def _rows(version: int) -> list[dict[str, Any]]:
    """Every person three times, shuffled: the last row of each person is the one a
    complete run leaves on the platform."""
    rows = [
        {
            "external_id": f"p{i}",
            "first_name": "F",
            "last_name": f"L{i}",
            "email": f"p{i}@example.com",
            "custom_fields": {"loyalty": f"v{version}-{k}"},
        }
        for i in range(PEOPLE)
        for k in range(ROWS_EACH)
    ]
    random.Random(version).shuffle(rows)
    return rows


def _last_values(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {row["external_id"]: row["custom_fields"]["loyalty"] for row in rows}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SAFETY
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def _interrupted_in(path: Path) -> bool:
    if not path.exists():
        return False
    # Whole lines only: the file is flushed line by line.
    text = path.read_text()
    lines = text[: text.rfind("\n") + 1].splitlines()
    return any(json.loads(line)["_contactsync"]["error"]["code"] == "interrupted" for line in lines)


class _Setup:
    def __init__(self, tmp_path: Path, url: str) -> None:
        self.config = tmp_path / "c.toml"
        self.config.write_text(CONFIG)
        self.state = f"sqlite:///{tmp_path / 'state.db'}"
        self.url = url

    def command(self, *args: str) -> list[str]:
        return [
            sys.executable, "-m", "contactsync", "upsert", "--config", str(self.config),
            "--tenant", "g", "--base-url", self.url, "--state", self.state, *args,
        ]  # fmt: skip

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=SAFETY,
            check=False,
        )


def _check_failed_file(failed: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What every --failed file of a run with a store must be: each line with its
    order, at most one line per person, and that line the person's last row."""
    lines = _lines(failed)
    last = _last_values(rows)
    without_order = [
        line["_contactsync"]["index"] for line in lines if "order" not in line["_contactsync"]
    ]
    assert not without_order, f"{len(without_order)} of {len(lines)} lines carry no order"
    people = [line["external_id"] for line in lines]
    twice = sorted({p for p in people if people.count(p) > 1})
    assert not twice, f"earlier rows offered again for {len(twice)} people, e.g. {twice[:3]}"
    older = [
        line for line in lines if line["custom_fields"]["loyalty"] != last[line["external_id"]]
    ]
    assert not older, f"{len(older)} lines are not their person's last row"
    for line in lines:
        index = line["_contactsync"]["index"]
        run, position = line["_contactsync"]["order"]
        assert position == index
        assert run >= 1
    return lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_interrupted_run_then_newer_run_then_replay_moves_nobody_back(
    tmp_path: Path, sig: signal.Signals
) -> None:
    first, second = _rows(1), _rows(2)
    input1, input2 = _write(tmp_path / "x1.jsonl", first), _write(tmp_path / "x2.jsonl", second)
    report, failed = tmp_path / "r1.json", tmp_path / "f1.jsonl"
    emulator = GatedGleantap(hold_at=3)
    server, url = serve_in_thread(EmulatorApp(emulator))
    setup = _Setup(tmp_path, url)
    try:
        child = subprocess.Popen(
            setup.command(str(input1), "--report", str(report), "--failed", str(failed)),
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert emulator.held.wait(SAFETY), "the run never reached its third write"
            child.send_signal(sig)
            # The rows the run holds come out interrupted at once: it takes no more.
            _wait_for(lambda: _interrupted_in(failed), "the run to stop taking input")
        finally:
            emulator.release.set()
        _, stderr = child.communicate(timeout=SAFETY)
        assert child.returncode == 130, stderr
        outcomes = json.loads(report.read_text())["outcomes"]
        assert sorted(o["index"] for o in outcomes) == list(range(PEOPLE * ROWS_EACH))
        lines = _check_failed_file(failed, first)
        assert len(lines) > PEOPLE // 2, "the interrupt left too little to replay"
        # The rows never taken are in the file too (a run holds far fewer than this).
        assert max(line["_contactsync"]["index"] for line in lines) > 800

        newer = setup.run(str(input2))
        assert newer.returncode == 0, newer.stderr
        replay = setup.run(str(failed), "--report", str(tmp_path / "r3.json"))
        assert replay.returncode == 0, replay.stderr
        held = {c["user_id"]: c.get("loyalty") for c in emulator.contacts()}
    finally:
        emulator.release.set()
        server.shutdown()
        server.server_close()
    expected = _last_values(second)
    moved_back = sorted(p for p, value in held.items() if value != expected[p])
    assert not moved_back, f"{len(moved_back)} of {PEOPLE} people went back to older data"
    assert len(held) == PEOPLE
    replayed = json.loads((tmp_path / "r3.json").read_text())
    assert {o["status"] for o in replayed["outcomes"]} == {"skipped"}
    assert {o["reason"] for o in replayed["outcomes"]} == {"superseded"}
    assert replayed["summary"]["requests"] == 0


def test_sigterm_during_start_up_writes_both_files_and_sends_nothing(tmp_path: Path) -> None:
    """With a store, the command first copies a piped input to a file: a signal while
    it reads the pipe comes before any request. The producer never ends (the pipe stays
    open): the rows read so far are the input, the run sends nothing and ends with exit
    130, a complete report and each of those rows in --failed with its order (earlier
    rows of a person skipped, superseded)."""
    rows = _rows(1)
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    # More than a pipe holds: once it is all written, the command is reading it (so
    # its own signal handling is in place). A line left half written is never a row.
    assert len(data) > 1 << 16  # a pipe holds 64 KiB on Linux
    report, failed = tmp_path / "r.json", tmp_path / "f.jsonl"
    emulator = GatedGleantap()
    server, url = serve_in_thread(EmulatorApp(emulator))
    setup = _Setup(tmp_path, url)
    try:
        child = subprocess.Popen(
            setup.command("-", "--report", str(report), "--failed", str(failed)),
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert child.stdin is not None
        assert child.stderr is not None
        try:
            child.stdin.write(data + b'{"external_id": "half')
            child.stdin.flush()
            child.send_signal(signal.SIGTERM)
            returncode = child.wait(timeout=SAFETY)
        finally:
            child.stdin.close()
        with child.stderr:
            stderr = child.stderr.read().decode(errors="replace")
        stored = len(emulator.contacts())
    finally:
        server.shutdown()
        server.server_close()
    assert returncode == 130, stderr
    assert stored == 0
    assert emulator.writes == 0
    outcomes = json.loads(report.read_text())["outcomes"]
    read = len(outcomes)
    # What the pipe held when the signal came is taken, the half line is not a row.
    assert read == len(rows)
    assert sorted(o["index"] for o in outcomes) == list(range(read))
    statuses = {(o["status"], o.get("reason") or o["error"]["code"]) for o in outcomes}
    assert statuses <= {("failed", "interrupted"), ("skipped", "superseded")}
    lines = _check_failed_file(failed, rows[:read])
    assert len(lines) == len({row["external_id"] for row in rows[:read]})


def test_a_second_signal_during_start_up_ends_it_at_once(tmp_path: Path) -> None:
    """Two signals while start-up reads a pipe whose producer never ends (it stays
    open): exit 130 and nothing sent, whether the second one comes before the run
    begins (start-up stops there) or after (the run stops at once). Two different
    signals, so that neither can merge into the other."""
    data = "".join(json.dumps(row) + "\n" for row in _rows(1)).encode()
    emulator = GatedGleantap()
    server, url = serve_in_thread(EmulatorApp(emulator))
    setup = _Setup(tmp_path, url)
    try:
        child = subprocess.Popen(
            setup.command("-", "--report", str(tmp_path / "r.json")),
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert child.stdin is not None
        try:
            child.stdin.write(data)  # returns once the command is reading the pipe
            child.stdin.flush()
            child.send_signal(signal.SIGTERM)
            child.send_signal(signal.SIGINT)
            returncode = child.wait(timeout=SAFETY)
        finally:
            child.stdin.close()
        assert child.stderr is not None
        with child.stderr:
            stderr = child.stderr.read().decode(errors="replace")
    finally:
        server.shutdown()
        server.server_close()
    assert returncode == 130, stderr
    assert emulator.writes == 0


_LOADING = """
import os, signal, sys
sys.argv = {argv!r}
sys.modules["__main__"].__file__ = "/usr/bin/contactsync"  # as the installed command
import contactsync  # the package is loaded: the command is not running yet
os.kill(os.getpid(), signal.SIGTERM)
from contactsync._cli import main
main()
"""


def test_sigterm_while_the_command_is_loading_still_writes_both_files(tmp_path: Path) -> None:
    """A SIGTERM after the package is loaded and before ``upsert`` runs (loading takes
    most of a second on a busy machine) is kept for the run, as one during start-up."""
    rows = _rows(1)[:30]
    contacts = _write(tmp_path / "x.jsonl", rows)
    report, failed = tmp_path / "r.json", tmp_path / "f.jsonl"
    emulator = GatedGleantap()
    server, url = serve_in_thread(EmulatorApp(emulator))
    setup = _Setup(tmp_path, url)
    argv = ["contactsync", *setup.command(str(contacts), "--report", str(report),
                                          "--failed", str(failed))[3:]]  # fmt: skip
    try:
        child = subprocess.run(
            [sys.executable, "-c", _LOADING.format(argv=argv)],
            cwd=ROOT, capture_output=True, text=True, timeout=SAFETY, check=False,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert child.returncode == 130, child.stderr
    assert emulator.writes == 0
    outcomes = json.loads(report.read_text())["outcomes"]
    assert sorted(o["index"] for o in outcomes) == list(range(len(rows)))
    _check_failed_file(failed, rows)


def test_another_command_loaded_with_upsert_on_its_line_keeps_the_usual_signals(
    tmp_path: Path,
) -> None:
    """Only ``upsert`` keeps a signal that came while it was loading: any other
    command (here one whose argument reads "upsert") ends by it as usual."""
    argv = ["contactsync", "providers", "upsert"]
    child = subprocess.run(
        [sys.executable, "-c", _LOADING.format(argv=argv)],
        cwd=ROOT, capture_output=True, text=True, timeout=SAFETY, check=False,
    )  # fmt: skip
    assert child.returncode == -signal.SIGTERM, child.stderr
