"""INPUT that the readers do not expect never ends a run; output files are checked
before anything is sent, streamed, and survive a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactsync._cli import main
from contactsync.testing import EmulatorApp, json_response, serve_in_thread
from tests.fakeprovider import DEMO_KEY, FakeEmulator

ROOT = Path(__file__).resolve().parents[2]
CONFIG = '[tenants.t]\nprovider = "fake"\nbase_url = "emulator"\n'
LOOPBACK = CONFIG + f'[tenants.t.credentials]\napi_key = "{DEMO_KEY}"\n'


def _lines_in(data: bytes) -> int:
    """Lines the reader takes from ``data``: blank ones are skipped, and so is a UTF-8
    byte order mark at the start."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return sum(1 for line in data.split(b"\n") if line.strip())


def flat(result: Result) -> str:
    """The output with the terminal's line wrapping undone."""
    return " ".join(result.output.split())


def good(n: int) -> bytes:
    return json.dumps({"external_id": f"g{n}", "email": f"g{n}@example.com"}).encode() + b"\n"


def upsert(tmp: Path, data: bytes, name: str = "in.jsonl", *extra: str) -> tuple[Result, Any]:
    config = tmp / "c.toml"
    config.write_text(CONFIG)
    if extra[:1] == ("--config",):
        config, extra = Path(extra[1]), extra[2:]
    contacts = tmp / name
    contacts.write_bytes(data)
    report = tmp / "report.json"
    result = CliRunner().invoke(
        main,
        [
            "upsert",
            "--config",
            str(config),
            "--tenant",
            "t",
            str(contacts),
            "--report",
            str(report),
            *extra,
        ],
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    data_out = json.loads(report.read_text()) if result.exit_code != 1 else None
    return result, data_out


UNREADABLE = {
    "not UTF-8": (b'{"email": "caf\xe9@example.com"}\n', "not UTF-8: byte 0xe9 at column 15"),
    "deep nesting": (b"[" * 50_000 + b"]" * 50_000 + b"\n", "nested deeper than 64 levels"),
    "deep object": (b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"\n", "nested deeper"),
    "huge int": (b'{"custom_fields": {"n": ' + b"7" * 4301 + b"}}\n", "has 4301 digits"),
    "lone surrogate": (b'{"first_name": "\\ud800"}\n', "lone surrogate"),
    "NaN": (b'{"custom_fields": {"n": NaN}}\n', "NaN is not a JSON number"),
    "infinite": (b'{"custom_fields": {"n": 1e999}}\n', "out of range"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_an_unreadable_line_is_that_lines_outcome(tmp_path: Path, case: str) -> None:
    line, fragment = UNREADABLE[case]
    failed = tmp_path / "failed.jsonl"
    result, report = upsert(tmp_path, good(0) + line + good(1), "in.jsonl", "--failed", str(failed))
    assert result.exit_code == 2, result.output
    outcomes = {o["index"]: o for o in report["outcomes"]}
    assert sorted(outcomes) == [0, 1, 2]
    assert [outcomes[i]["status"] for i in (0, 1, 2)] == ["created", "rejected", "created"]
    error = outcomes[1]["error"]
    assert error["field"] == "<line>"
    assert error["message"].startswith("<line>: line 2: ")
    assert fragment in error["message"]
    assert report["summary"]["created"] == 2
    # The line is written back as it was, ready to fix and send again.
    assert failed.read_bytes() == line


def test_an_unreadable_line_has_the_unreadable_input_code(tmp_path: Path) -> None:
    _, report = upsert(tmp_path, b"\xff\n")
    assert report["outcomes"][0]["error"]["code"] == "unreadable_input"


def test_bad_csv_rows_are_their_own_outcomes(tmp_path: Path) -> None:
    data = (
        b"external_id,email,address,address.city\n"
        b"a,a@example.com,,\n"
        b"b,b\xff@example.com,,\n"
        b"c,c@example.com,x,Leeds\n"
        b"d,d@example.com,,,surplus\n"
        b"e,e@example.com,,\n"
    )
    result, report = upsert(tmp_path, data, "in.csv")
    assert result.exit_code == 2, result.output
    by_index = {o["index"]: o for o in report["outcomes"]}
    assert [by_index[i]["status"] for i in range(5)] == [
        "created",
        "rejected",
        "rejected",
        "rejected",
        "created",
    ]
    assert "line 3: column 'email' is not UTF-8" in by_index[1]["error"]["message"]
    assert "clashes with column 'address'" in by_index[2]["error"]["message"]
    assert "line 5: the row has 5 cells, the header 4" in by_index[3]["error"]["message"]


@pytest.mark.parametrize(
    "header", [b"external_id,\xffmail\n", b'"external_id,email\n', b"\xef\xbb\xbf\xff\n"]
)
def test_an_unreadable_csv_header_ends_the_run_before_sending(
    tmp_path: Path, header: bytes
) -> None:
    result, _ = upsert(tmp_path, header + b"a,a@example.com\n", "in.csv")
    assert result.exit_code == 1, result.output
    assert result.output.count("error:") == 1
    if header.startswith(b'"'):
        # An open quote in the header is a record still open at the end: the header
        # is unreadable, named by its lines (the rest is not read into it).
        assert (
            "CSV header cannot be read: lines 1\u20132: a quoted field opened on line 1 is "
            "still open at the end of the file" in flat(result)
        )
    else:
        assert "CSV header" in result.output
    assert not (tmp_path / "report.json").exists()


def test_a_utf8_bom_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    for data, name in (
        (b"\xef\xbb\xbf" + good(0), "in.jsonl"),
        (b"\xef\xbb\xbfemail\na@x.io\n", "in.csv"),
    ):
        result, report = upsert(tmp_path, data, name)
        assert result.exit_code == 0, result.output
        assert [o["status"] for o in report["outcomes"]] == ["created"]


def test_a_directory_as_input_is_one_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    result = CliRunner().invoke(
        main, ["upsert", "--config", str(config), "--tenant", "t", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"input {tmp_path} is a directory" in flat(result)


def test_an_unopenable_input_is_one_clear_message(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can read any file")
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    locked = tmp_path / "in.jsonl"
    locked.write_bytes(good(0))
    locked.chmod(0)
    result = CliRunner().invoke(
        main, ["upsert", "--config", str(config), "--tenant", "t", str(locked)]
    )
    assert result.exit_code == 1
    assert "cannot open input" in flat(result)


# -- pipes are read once, as they stream --------------------------------------------------


def cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "contactsync", "upsert"]
    command += ["--config", str(ROOT / "examples" / "demo.toml"), "--tenant", "demo-gleantap"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


def people(count: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "external_id": f"p{n}",
                "email": f"p{n}@example.com",
                "first_name": "P",
                "last_name": "Q",
            }
        )
        .encode()
        .__add__(b"\n")
        for n in range(count)
    )


def test_an_os_pipe_as_input_is_upserted(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    writer = threading.Thread(target=lambda: _write_and_close(write_end, people(5)))
    writer.start()
    try:
        done = cli(f"/dev/fd/{read_end}", "--report", str(tmp_path / "r.json"), pass_fds=[read_end])
    finally:
        os.close(read_end)
        writer.join()
    assert done.returncode == 0, done.stderr
    assert written(done.stderr) == 5
    report = json.loads((tmp_path / "r.json").read_text())
    assert sorted(o["index"] for o in report["outcomes"]) == [0, 1, 2, 3, 4]


def test_a_fifo_as_input_is_upserted(tmp_path: Path) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(people(4)))
    writer.start()
    done = cli(str(fifo))
    writer.join()
    assert done.returncode == 0, done.stderr
    assert written(done.stderr) == 4


@pytest.mark.parametrize("path", ["-", "/dev/stdin"])
def test_stdin_as_input_is_upserted(path: str) -> None:
    done = cli(path, input=people(3).decode())
    assert done.returncode == 0, done.stderr
    assert written(done.stderr) == 3


def written(summary_line: str) -> int:
    """Contacts written on the platform, from the totals line printed at the end."""
    counts = dict(part.rsplit(" ", 1) for part in summary_line.strip().split(", "))
    assert counts["rejected"] == counts["failed"] == "0", summary_line
    return int(counts["created"]) + int(counts["updated"])


def _write_and_close(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


# -- output files -------------------------------------------------------------------------


@pytest.fixture
def loopback() -> Iterator[tuple[FakeEmulator, str]]:
    emulator = FakeEmulator({DEMO_KEY})
    server, url = serve_in_thread(EmulatorApp(emulator))
    try:
        yield emulator, url
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("option", ["--report", "--failed"])
@pytest.mark.parametrize("where", ["missing-dir/out", "a-directory", "read-only/out"])
def test_an_unwritable_output_fails_before_any_request(
    tmp_path: Path, loopback: tuple[FakeEmulator, str], option: str, where: str
) -> None:
    emulator, url = loopback
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "read-only").mkdir(mode=0o500)
    if where == "read-only/out" and os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    config = tmp_path / "c.toml"
    config.write_text(LOOPBACK)
    contacts = tmp_path / "in.jsonl"
    contacts.write_bytes(good(0) + good(1))
    result = CliRunner().invoke(
        main,
        [
            "upsert",
            "--config",
            str(config),
            "--tenant",
            "t",
            "--base-url",
            url,
            str(contacts),
            option,
            str(tmp_path / where),
        ],
    )
    assert result.exit_code == 1, result.output
    assert f"{option} {tmp_path / where} cannot be written" in flat(result)
    assert emulator.calls == 0


def test_an_output_naming_the_input_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    contacts = tmp_path / "in.jsonl"
    contacts.write_bytes(good(0))
    result = CliRunner().invoke(
        main,
        [
            "upsert",
            "--config",
            str(config),
            "--tenant",
            "t",
            str(contacts),
            "--failed",
            str(tmp_path / "." / "in.jsonl"),
        ],
    )
    assert result.exit_code == 1
    assert "is the input file" in flat(result)
    assert contacts.read_bytes() == good(0)


def test_report_and_failed_are_complete(tmp_path: Path) -> None:
    lines = [
        good(n) if n % 4 else b'{"external_id": "bad%d", "email": "x"}\n' % n for n in range(60)
    ]
    failed = tmp_path / "failed.jsonl"
    result, report = upsert(tmp_path, b"".join(lines), "in.jsonl", "--failed", str(failed))
    assert result.exit_code == 2
    assert sorted(o["index"] for o in report["outcomes"]) == list(range(60))
    assert report["summary"]["created"] == 45
    assert report["summary"]["rejected"] == 15
    rejected = {o["external_id"] for o in report["outcomes"] if o["status"] == "rejected"}
    assert rejected == {f"bad{n}" for n in range(0, 60, 4)}
    written = [json.loads(line) for line in failed.read_text().splitlines()]
    assert sorted(r["external_id"] for r in written) == sorted(rejected)


def test_the_report_and_failed_file_are_scrubbed(tmp_path: Path) -> None:
    secret = "fake-demo-key"  # the tenant's credential, planted in the input
    lines = json.dumps({"email": "bad", "first_name": secret}).encode() + b"\n"
    failed = tmp_path / "failed.jsonl"
    result, _report = upsert(tmp_path, lines + b"not json " + secret.encode() + b"\n",
                            "in.jsonl", "--failed", str(failed))  # fmt: skip
    assert result.exit_code == 2
    assert secret not in (tmp_path / "report.json").read_text()
    text = failed.read_text()
    assert secret not in text
    assert text.count("***") == 2


# -- a killed run keeps every --failed line it wrote -----------------------------------------


class GatedEmulator(FakeEmulator):
    """Refuses (400) batches of "refuse" contacts."""

    def __init__(self) -> None:
        super().__init__({DEMO_KEY})

    def handle(self, request: httpx.Request) -> httpx.Response:
        if b"refuse" in request.content:
            self.calls += 1
            return json_response(400, {"error": "refused by the test"})
        return super().handle(request)


class GatedApp(EmulatorApp):
    """Holds "block" batches until released. The hold is outside the app's lock, which
    serialises the emulator: held inside, it also held a "refuse" batch sent at the same
    time, and that batch's lines were never written."""

    def __init__(self) -> None:
        super().__init__(GatedEmulator())
        self.release = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if b"block" in request.content:
            self.release.wait(290)
        return super().__call__(request)


CHILD = (
    "import sys; from contactsync.provider import default_registry; "
    "from tests.fakeprovider import FakeProvider; default_registry.register(FakeProvider); "
    "from contactsync._cli import main; main(sys.argv[1:])"
)


@pytest.mark.timeout(300)  # a loaded machine is slow to start the child, never wrong
def test_sigkill_mid_run_leaves_whole_re_upsertable_failed_lines(tmp_path: Path) -> None:
    rows = [{"external_id": f"refuse{n}", "email": f"r{n}@example.com"} for n in range(12)]
    rows += [{"external_id": f"block{n}", "email": f"b{n}@example.com"} for n in range(3)]
    rows += [{"external_id": f"after{n}", "email": f"a{n}@example.com"} for n in range(30)]
    contacts = tmp_path / "in.jsonl"
    contacts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = tmp_path / "c.toml"
    # The held batch must still be in flight at the kill however slow the machine: no
    # read timeout or attempt deadline may fail it first, and no backoff may delay the
    # refused contacts' outcomes (both once let the held batch fail before the kill).
    config.write_text(
        LOOPBACK + "[tenants.t.http]\nmax_retries = 0\ntimeout = 600\nattempt_timeout = 600\n"
        "backoff_base = 0.0\n"
    )
    failed = tmp_path / "failed.jsonl"
    app = GatedApp()
    server, url = serve_in_thread(app)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            "upsert",
            "--config",
            str(config),
            "--tenant",
            "t",
            "--base-url",
            url,
            str(contacts),
            "--failed",
            str(failed),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Wait (a safety net, not a speed bound) until the refused contacts are written;
        # the run cannot end meanwhile: the "block" batch is held by the emulator.
        deadline = time.monotonic() + 240
        while _lines(failed) < 12 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        assert child.poll() is None, "the run ended while a batch was held"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        app.release.set()
        server.shutdown()
        server.server_close()
    assert child.returncode == -signal.SIGKILL
    data = failed.read_bytes()
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.splitlines()]
    assert sorted(r["external_id"] for r in records) == sorted(f"refuse{n}" for n in range(12))
    # Every line is accepted again: renamed so the fake platform takes them this time.
    again = tmp_path / "again.jsonl"
    again.write_text(data.decode().replace("refuse", "retry"))
    config.write_text(CONFIG)
    result = CliRunner().invoke(
        main, ["upsert", "--config", str(config), "--tenant", "t", str(again)]
    )
    assert result.exit_code == 0, result.output
    assert "created 12" in result.output


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


# -- arbitrary bytes never end a run ------------------------------------------------------

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["email", "external_id", "first_name", "custom_fields", "groups", "x"]),
            children,
            max_size=3,
        )
    ),
    max_leaves=8,
)
line_bytes = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    json_like.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([good(1).strip(), b"[" * 3000, b'"\\udfff"', b"-" + b"1" * 5000, b"\r"]),
)
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def total(summary: dict[str, int]) -> int:
    return sum(v for k, v in summary.items() if k != "requests")


def _fuzz_run(data: bytes, suffix: str, *extra: str) -> tuple[Result, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return upsert(Path(tmp), data, f"in{suffix}", *extra)


@FUZZ
@given(st.lists(line_bytes, max_size=12).map(b"\n".join))
def test_any_bytes_as_json_lines_give_one_outcome_per_line(data: bytes) -> None:
    result, report = _fuzz_run(data, ".jsonl")
    expected = _lines_in(data)
    assert result.exit_code in (0, 2), result.output
    assert sorted(o["index"] for o in report["outcomes"]) == list(range(expected))
    assert total(report["summary"]) == expected


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_as_csv_give_one_outcome_per_row_or_one_clear_error(data: bytes) -> None:
    result, report = _fuzz_run(data, ".csv")
    if result.exit_code == 1:
        assert result.output.count("error:") == 1
        assert "CSV header" in result.output
        return
    assert result.exit_code in (0, 2), result.output
    indexes = sorted(o["index"] for o in report["outcomes"])
    assert indexes == list(range(len(indexes)))
    assert total(report["summary"]) == len(indexes)


cell = st.binary(max_size=12).map(lambda b: b.translate(None, b',"\r\n').replace(b"|", b""))


@FUZZ
@given(
    st.lists(st.lists(cell, min_size=1, max_size=5), max_size=10),
)
def test_any_bytes_in_csv_cells_give_exactly_one_outcome_per_row(rows: list[list[bytes]]) -> None:
    header = b"external_id,email,first_name,custom_fields.x\n"
    data = header + b"".join(b",".join(r) + b"\n" for r in rows)
    result, report = _fuzz_run(data, ".csv")
    assert result.exit_code in (0, 2), result.output
    expected = sum(1 for r in rows if r != [b""])  # an empty line is no row
    assert sorted(o["index"] for o in report["outcomes"]) == list(range(expected))


@pytest.mark.parametrize("provider", ["yespo", "ivvy", "gleantap"])
@settings(FUZZ, max_examples=40)
@given(data=st.lists(line_bytes, max_size=8).map(b"\n".join))
def test_any_bytes_give_one_outcome_per_line_on_each_provider(provider: str, data: bytes) -> None:
    demo = str(ROOT / "examples" / "demo.toml")
    result, report = _fuzz_run(data, ".jsonl", "--config", demo, "--tenant", f"demo-{provider}")
    expected = _lines_in(data)
    assert result.exit_code in (0, 2), result.output
    assert sorted(o["index"] for o in report["outcomes"]) == list(range(expected))
    assert total(report["summary"]) == expected
