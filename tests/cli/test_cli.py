from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from contactsync._cli import main
from contactsync.provider import default_registry
from contactsync.testing import EmulatorApp, serve_in_thread
from tests.fakeprovider import FakeProvider

CONFIG = """
[tenants.t]
provider = "fake"
base_url = "emulator"
default_phone_region = "GB"
[tenants.t.custom_fields]
loyalty = 7
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_providers_json_lists_the_three_distributions() -> None:
    result = CliRunner().invoke(main, ["providers", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    by_name = {p["name"]: p for p in data["providers"]}
    assert {by_name[n]["distribution"] for n in ("yespo", "ivvy", "gleantap")} == {
        "contactsync-yespo",
        "contactsync-ivvy",
        "contactsync-gleantap",
    }
    assert by_name["fake"]["capabilities"]["max_batch_size"] == 3
    assert data["broken"] == []
    # What each says a successful write was (its page says when).
    names = ("yespo", "ivvy", "gleantap")
    writes = {n: by_name[n]["capabilities"]["write_statuses"] for n in names}
    assert writes == {n: ["created", "updated", "written"] for n in names}


def test_providers_table() -> None:
    result = CliRunner().invoke(main, ["providers"])
    assert result.exit_code == 0
    assert "yespo" in result.output
    assert "gleantap" in result.output
    assert "writes" in result.output


def test_check_ok_and_error_path(tmp_path: Path) -> None:
    good = write(tmp_path, "good.toml", CONFIG)
    result = CliRunner().invoke(main, ["check", "--config", str(good)])
    assert result.exit_code == 0
    assert "ok: 1 tenant(s): t" in result.output
    bad = write(tmp_path, "bad.toml", CONFIG + "\n[tenants.t.http]\ntimeout = 'x'\n")
    result = CliRunner().invoke(main, ["check", "--config", str(bad), "--tenant", "t"])
    assert result.exit_code == 1
    assert "tenants.t.http.timeout: must be a number" in result.output


def test_plan_prints_json_lines_and_sends_nothing(tmp_path: Path) -> None:
    config = write(tmp_path, "c.toml", CONFIG)
    contacts = write(tmp_path, "in.jsonl", '{"external_id": "a", "email": "a@example.com"}\n')
    result = CliRunner().invoke(
        main, ["plan", "--config", str(config), "--tenant", "t", str(contacts)]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(line["method"], line["url"]) for line in lines] == [
        ("POST", "https://fake.test/lookup"),
        ("POST", "https://fake.test/contacts"),
    ]
    assert lines[0]["contacts"] == [0]
    assert lines[0]["headers"]["x-key"] == "***"
    assert lines[1]["body"]["contacts"][0]["email"] == "a@example.com"


def test_upsert_report_failed_file_and_exit_codes(tmp_path: Path) -> None:
    config = write(tmp_path, "c.toml", CONFIG)
    contacts = write(
        tmp_path,
        "in.jsonl",
        '{"external_id": "a", "email": "a@example.com", "custom_fields": {"loyalty": "gold"}}\n'
        '{"external_id": "b", "email": "not-an-email"}\n'
        "{not json\n"
        '{"external_id": "c", "email": "c@example.com", "phone": "020 7946 0958"}\n',
    )
    report, failed = tmp_path / "report.json", tmp_path / "failed.jsonl"
    args = [
        "upsert",
        "--config",
        str(config),
        "--tenant",
        "t",
        str(contacts),
        "--report",
        str(report),
        "--failed",
        str(failed),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    data = json.loads(report.read_text())
    assert data["summary"] == {
        "created": 2,
        "updated": 0,
        "written": 0,
        "unchanged": 0,
        "skipped": 0,
        "rejected": 2,
        "failed": 0,
        "requests": 2,
    }
    # Outcomes are written as they finish, each with its input index.
    outcomes = sorted(data["outcomes"], key=lambda o: o["index"])
    assert [o["index"] for o in outcomes] == [0, 1, 2, 3]
    assert outcomes[1]["error"]["field"] == "email"
    assert outcomes[1]["external_id"] == "b"
    assert outcomes[0]["remote_id"] == "1"
    assert outcomes[2]["error"]["message"].startswith("<line>: line 3: not JSON")
    lines = sorted(failed.read_text().splitlines())
    assert lines[1] == "{not json"  # unreadable: written back as it was
    annotated = json.loads(lines[0])
    assert annotated.pop("_contactsync") == {
        "index": 1,
        "error": outcomes[1]["error"],
    }
    assert annotated == {"external_id": "b", "email": "not-an-email"}
    # The console says why, not only how many.
    assert "rejected 2" in result.output
    assert "invalid_contact" in result.output
    assert "e.g. input 1: email: not a valid address" in result.output
    assert "unreadable_input" in result.output

    ok = write(tmp_path, "ok.jsonl", '{"external_id": "z", "email": "z@example.com"}\n')
    result = CliRunner().invoke(main, ["upsert", "--config", str(config), "--tenant", "t", str(ok)])
    assert result.exit_code == 0
    assert "created 1" in result.output


def test_failed_file_is_accepted_again(tmp_path: Path) -> None:
    config = write(tmp_path, "c.toml", CONFIG + '[tenants.t.groups]\nvip = "G1"\n')
    contacts = write(
        tmp_path,
        "in.jsonl",
        '{"external_id": "a", "email": "a@example.com", "groups": {"add": ["vip"]}, '
        '"sms_status": "subscribed"}\n',
    )
    failed = tmp_path / "failed.jsonl"
    runner = CliRunner()
    first = runner.invoke(
        main,
        [
            "upsert",
            "--config",
            str(config),
            "--tenant",
            "t",
            str(contacts),
            "--failed",
            str(failed),
        ],
    )
    assert first.exit_code == 2
    record = json.loads(failed.read_text())
    assert record["groups"] == {"add": ["vip"]}
    assert record["sms_status"] == "subscribed"
    record.pop("sms_status")
    failed.write_text(json.dumps(record) + "\n")
    again = runner.invoke(main, ["upsert", "--config", str(config), "--tenant", "t", str(failed)])
    assert again.exit_code == 0, again.output


def test_csv_input_and_stdin(tmp_path: Path) -> None:
    config = write(tmp_path, "c.toml", CONFIG)
    csv_file = write(
        tmp_path, "in.csv", "external_id,email,custom_fields.loyalty\na,a@example.com,gold\n"
    )
    result = CliRunner().invoke(
        main, ["upsert", "--config", str(config), "--tenant", "t", str(csv_file)]
    )
    assert result.exit_code == 0, result.output
    assert "created 1" in result.output
    result = CliRunner().invoke(
        main,
        ["upsert", "--config", str(config), "--tenant", "t", "-"],
        input='{"external_id": "b", "email": "b@example.com"}\n',
    )
    assert result.exit_code == 0, result.output


def test_usage_errors_exit_1(tmp_path: Path) -> None:
    config = write(tmp_path, "c.toml", CONFIG)
    runner = CliRunner()
    missing = runner.invoke(
        main, ["upsert", "--config", str(config), "--tenant", "t", "nope.jsonl"]
    )
    assert missing.exit_code == 1
    assert "does not exist" in missing.output
    tenant = runner.invoke(main, ["upsert", "--config", str(config), "--tenant", "x", str(config)])
    assert tenant.exit_code == 1
    assert "tenants.x: no such tenant" in tenant.output
    unknown = runner.invoke(main, ["emulate", "nope"])
    assert unknown.exit_code == 1
    assert "no provider named 'nope'" in unknown.output
    half = runner.invoke(main, ["emulate", "fake", "--config", str(config)])
    assert half.exit_code == 1
    assert "--config and --tenant go together" in half.output


def test_upsert_against_a_loopback_emulator(tmp_path: Path) -> None:
    app = EmulatorApp(FakeProvider.create_emulator())
    server, url = serve_in_thread(app)
    try:
        # Off the in-process emulator, credentials are never implied: give the demo key.
        credentials = '[tenants.t.credentials]\napi_key = "fake-demo-key"\n'
        config = write(tmp_path, "c.toml", CONFIG + credentials)
        contacts = write(
            tmp_path,
            "in.jsonl",
            "".join(
                json.dumps({"external_id": f"e{n}", "email": f"e{n}@example.com"}) + "\n"
                for n in range(7)
            ),
        )
        args = [
            "upsert",
            "--config",
            str(config),
            "--tenant",
            "t",
            "--base-url",
            url,
            str(contacts),
        ]
        first = CliRunner().invoke(main, args)
        assert first.exit_code == 0, first.output
        second = CliRunner().invoke(main, args)
        assert second.exit_code == 0
        assert "created 0" in second.output
        stored = httpx.get(f"{url}/__emulator__/contacts").json()
        assert sorted(c["external_id"] for c in stored) == [f"e{n}" for n in range(7)]
        httpx.post(f"{url}/__emulator__/reset")
        assert httpx.get(f"{url}/__emulator__/contacts").json() == []
    finally:
        server.shutdown()
        server.server_close()


def test_demo_runs_each_ready_provider_and_skips_the_rest(tmp_path: Path) -> None:
    class Planned(FakeProvider):
        name = "planned"
        implemented = False

    default_registry.register(Planned)
    try:
        _run_demo(tmp_path)
    finally:
        default_registry.unregister("planned")


def _run_demo(tmp_path: Path) -> None:
    config = write(tmp_path, "demo.toml", CONFIG.replace("tenants.t", "tenants.demo-fake"))
    contacts = write(
        tmp_path,
        "contacts.jsonl",
        '{"external_id": "a", "email": "a@example.com"}\n{"email": "bad"}\n',
    )
    result = CliRunner().invoke(main, ["demo", "--config", str(config), "--input", str(contacts)])
    assert result.exit_code == 0, result.output
    assert "fake (tenant demo-fake" in result.output
    assert "contacts stored on the emulator: 1" in result.output
    assert "planned: provider not implemented yet, skipped" in result.output
