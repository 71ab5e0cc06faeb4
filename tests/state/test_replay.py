"""Replaying ``--failed`` never moves a person to older data, and with a state store only
each person's last row is written (repeat runs send nothing).

Every test drives the real CLI against an emulator served on loopback, with 100 people of
three rows each (shuffled, each row with other data), and reads back what the emulator
holds: every person must end with their *last* row's data.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from contactsync_gleantap import GleantapEmulator
from contactsync_yespo import YespoEmulator

from contactsync import AsyncClient, SkipReason, Status
from contactsync._cli import main
from contactsync.testing import Emulator, EmulatorApp, Faults, serve_in_thread
from tests.reliability.scenarios import SCENARIOS, Scenario, expected, people
from tests.writes import WritesCounted

BY_NAME = {s.name: s for s in SCENARIOS}
PEOPLE = 100


def _toml(table: dict[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in table.items() if isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{k} = {json.dumps(v)}" for k, v in scalars.items()]
    for key, sub in tables.items():
        lines.append(_toml(sub, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines) + "\n"


def rows(seed: int = 3, tag: str = "") -> list[dict[str, Any]]:
    """Three rows per person, shuffled; each row sets other data (last name, loyalty)."""
    out = []
    for n, person in enumerate(people(PEOPLE)):
        for j in range(3):
            out.append(
                {
                    **person,
                    "last_name": f"Last{n}-{j}{tag}",
                    "custom_fields": {"loyalty": f"v{j}{tag}"},
                }
            )
    random.Random(seed).shuffle(out)
    return out


def last_rows(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for record in records:
        last[record["external_id"]] = record
    return last


class Platform:
    """One emulator on loopback for several CLI runs, as a real platform is."""

    def __init__(self, scenario: Scenario, tmp: Path, emulator: Emulator | None = None) -> None:
        self.scenario = scenario
        self.tmp = tmp
        self.emulator = emulator or scenario.emulator()
        # The Yespo tests hold the emulator's clock still: its rate windows never slide.
        # Writes are counted apart from look-ups (Gleantap's newContact).
        self.app = WritesCounted(self.emulator, enforce_rate_limits=False)
        self.server, self.base = serve_in_thread(self.app)
        self.config = tmp / "c.toml"
        self.runs = 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def write_config(self, **http: Any) -> None:
        self.config.write_text(_toml(self.scenario.config(**http)))

    def upsert(
        self, source: Path | str, *, state: str | None = None, stdin: bytes | None = None
    ) -> tuple[dict[str, Any], Path]:
        """One CLI run: its report, and its --failed file."""
        self.runs += 1
        report = self.tmp / f"report-{self.runs}.json"
        failed = self.tmp / f"failed-{self.runs}.jsonl"
        args = ["upsert", "--config", str(self.config), "--tenant", "r", "--base-url", self.base]
        args += ["--report", str(report), "--failed", str(failed), str(source)]
        if state is not None:
            args += ["--state", state]
        result = CliRunner().invoke(main, args, input=stdin)
        assert result.exit_code in (0, 2), result.output
        return json.loads(report.read_text()), failed

    def holds(self) -> dict[str, tuple[Any, ...]]:
        views = [self.scenario.view(c) for c in self.emulator.contacts()]
        assert len(views) == len({v[0] for v in views}) == PEOPLE
        return {v[0]: v for v in views}


@pytest.fixture
def platforms(tmp_path: Path) -> Iterator[list[Platform]]:
    made: list[Platform] = []
    yield made
    for platform in made:
        platform.close()


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _failed_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _assert_last_rows(platform: Platform, records: list[dict[str, Any]]) -> None:
    holds = platform.holds()
    older = [k for k, row in last_rows(records).items() if holds[k] != expected(row)]
    assert older == [], f"{len(older)} people hold older data than their last row"


def _superseded(records: list[dict[str, Any]]) -> set[int]:
    last = {r["external_id"]: i for i, r in enumerate(records)}
    return {i for i, r in enumerate(records) if last[r["external_id"]] != i}


@pytest.mark.parametrize("with_store", [False, True], ids=["no-store", "store"])
def test_replaying_failed_under_500s_leaves_every_person_with_their_last_row(
    tmp_path: Path, url: str, platforms: list[Platform], with_store: bool
) -> None:
    # Gleantap, 40 % HTTP 500 and retry_for = 0: many rows fail. Replaying --failed (as
    # the docs advise), with or without the store, must put nobody back to an older row.
    platform = Platform(BY_NAME["gleantap"], tmp_path, GleantapEmulator())
    platforms.append(platform)
    platform.write_config(retry_for=0)
    platform.app.faults = Faults(rate=0.4, kinds=("500",), seed=11)
    records = rows()
    source = _write(tmp_path / "in.jsonl", records)
    state = url if with_store else None
    report, failed = platform.upsert(source, state=state)
    assert report["summary"]["failed"] > 0
    offered = _failed_lines(failed)
    platform.app.faults = Faults()
    replay, _ = platform.upsert(failed, state=state)
    assert replay["summary"]["failed"] == 0
    _assert_last_rows(platform, records)
    later = _superseded(records)
    for line in offered:
        # Only a person's last row is ever offered again.
        assert line["_contactsync"]["index"] not in later
        if with_store:
            assert len(line["_contactsync"]["order"]) == 2
    for outcome in report["outcomes"]:
        if outcome["index"] in later and outcome["error"] is not None:
            assert outcome["error"]["retryable"] is False


def test_a_replay_older_than_what_the_store_confirmed_is_skipped(
    tmp_path: Path, url: str, platforms: list[Platform]
) -> None:
    # Run 1 fails for some people; run 2 (a newer input) writes every one of them; the
    # failed file of run 1, replayed now, is older than what the store confirmed.
    platform = Platform(BY_NAME["gleantap"], tmp_path, GleantapEmulator())
    platforms.append(platform)
    platform.write_config(retry_for=0)
    platform.app.faults = Faults(rate=0.4, kinds=("500",), seed=5)
    first = rows()
    _, failed = platform.upsert(_write(tmp_path / "one.jsonl", first), state=url)
    offered = _failed_lines(failed)
    assert offered
    platform.app.faults = Faults()
    newer = rows(seed=4, tag="-new")
    report, _ = platform.upsert(_write(tmp_path / "two.jsonl", newer), state=url)
    assert report["summary"]["failed"] == 0
    report, _ = platform.upsert(failed, state=url)
    assert report["summary"]["requests"] == 0
    assert {(o["status"], o.get("reason")) for o in report["outcomes"]} == {
        (Status.SKIPPED, SkipReason.SUPERSEDED)
    }
    _assert_last_rows(platform, newer)


def test_a_replay_older_than_a_newer_run_whose_answers_were_lost_is_skipped(
    tmp_path: Path, url: str, platforms: list[Platform]
) -> None:
    # Run 1 fails for some people (500s); run 2, a newer input, meets lost answers: its
    # writes were applied but not confirmed (outcome_unknown). The failed file of run 1,
    # replayed now, is older than what run 2 sent: it must not be written over it.
    platform = Platform(BY_NAME["gleantap"], tmp_path, GleantapEmulator())
    platforms.append(platform)
    platform.write_config(retry_for=0)
    platform.app.faults = Faults(rate=0.4, kinds=("500",), seed=5)
    first = rows()
    _, failed = platform.upsert(_write(tmp_path / "one.jsonl", first), state=url)
    assert _failed_lines(failed)
    platform.app.faults = Faults(rate=0.3, kinds=("lost",), seed=9)
    newer = rows(seed=4, tag="-new")
    report, _ = platform.upsert(_write(tmp_path / "two.jsonl", newer), state=url)
    unknown = [o for o in report["outcomes"] if (o["error"] or {}).get("code") == "outcome_unknown"]
    assert unknown, "no lost answer met: nothing checked"
    platform.app.faults = Faults()
    view = platform.scenario.view
    before = {v[0]: v for v in map(view, platform.emulator.contacts())}
    newest = {k: expected(row) for k, row in last_rows(newer).items()}
    assert any(before.get(k) == v for k, v in newest.items())
    platform.upsert(failed, state=url)
    after = {v[0]: v for v in map(view, platform.emulator.contacts())}
    # Whoever held their newer row before the replay holds it still.
    older = [k for k, v in newest.items() if before.get(k) == v and after.get(k) != v]
    assert older == [], f"{len(older)} people moved by a replay older than the newer run"


def _yespo_still() -> tuple[YespoEmulator, list[float]]:
    now = [0.0]
    emulator = YespoEmulator(clock=lambda: now[0])
    emulator.segment("VIP")
    return emulator, now


@pytest.mark.parametrize("with_store", [False, True], ids=["no-store", "store"])
def test_yespo_realtime_409s_then_a_replay_keep_the_last_rows(
    tmp_path: Path, url: str, platforms: list[Platform], with_store: bool
) -> None:
    # A second run within a minute is answered 409 ("repeated request") on rows that ran
    # the minute before; the earlier rows of each person must not be offered again, so a
    # replay 65 s later leaves every person with their last row.
    emulator, now = _yespo_still()
    platform = Platform(BY_NAME["yespo-realtime"], tmp_path, emulator)
    platforms.append(platform)
    platform.write_config()
    records = rows()
    source = _write(tmp_path / "in.jsonl", records)
    state = url if with_store else None
    platform.upsert(source, state=state)
    _assert_last_rows(platform, records)
    report, failed = platform.upsert(source, state=state)
    offered = _failed_lines(failed)
    now[0] += 65
    platform.upsert(failed, state=state)
    _assert_last_rows(platform, records)
    if with_store:
        assert report["summary"]["requests"] == 0
    later = _superseded(records)
    for line in offered:
        assert line["_contactsync"]["index"] not in later
    for outcome in report["outcomes"]:
        if outcome["index"] in later and outcome["status"] == Status.FAILED:
            assert outcome["error"]["retryable"] is False
            assert outcome["reason"] == SkipReason.SUPERSEDED


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_repeat_runs_with_several_rows_per_person_send_nothing(
    tmp_path: Path, url: str, platforms: list[Platform], scenario: Scenario
) -> None:
    # 300 rows for 100 people, three times with the store: runs 2 and 3 send nothing,
    # and the first wrote each person once, with their last row.
    emulator: Emulator | None = _yespo_still()[0] if scenario.name.startswith("yespo") else None
    platform = Platform(scenario, tmp_path, emulator)
    platforms.append(platform)
    platform.write_config()
    records = rows()
    source = _write(tmp_path / "in.jsonl", records)
    first, _ = platform.upsert(source, state=url)
    repeats = [platform.upsert(source, state=url)[0] for _ in range(2)]
    assert [again["summary"]["requests"] for again in repeats] == [0, 0]
    _assert_last_rows(platform, records)
    assert first["summary"]["failed"] == 0
    assert first["summary"]["skipped"] == 2 * PEOPLE
    for outcome in first["outcomes"]:
        if outcome["status"] == Status.SKIPPED:
            assert outcome["reason"] == SkipReason.SUPERSEDED
    for again in repeats:
        assert again["summary"]["unchanged"] == PEOPLE
        assert again["summary"]["skipped"] == 2 * PEOPLE


def test_stdin_is_read_ahead_too(tmp_path: Path, url: str, platforms: list[Platform]) -> None:
    platform = Platform(BY_NAME["gleantap"], tmp_path, GleantapEmulator())
    platforms.append(platform)
    platform.write_config()
    records = rows()
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    first, _ = platform.upsert("-", state=url, stdin=data)
    # One write per person, their last row (each new person is looked up first).
    assert platform.app.writes == PEOPLE
    assert first["summary"]["skipped"] == 2 * PEOPLE
    again, _ = platform.upsert("-", state=url, stdin=data)
    assert again["summary"]["requests"] == 0
    _assert_last_rows(platform, records)


def test_plan_with_a_store_plans_only_each_persons_last_row(
    tmp_path: Path, url: str, platforms: list[Platform]
) -> None:
    platform = Platform(BY_NAME["gleantap"], tmp_path, GleantapEmulator())
    platforms.append(platform)
    platform.write_config()
    platform.upsert(_write(tmp_path / "in.jsonl", rows()), state=url)
    newer = rows(seed=8, tag="-new")
    source = _write(tmp_path / "new.jsonl", newer)
    args = ["plan", "--config", str(platform.config), "--tenant", "r", "--base-url", platform.base]
    result = CliRunner().invoke(main, [*args, "--state", url, str(source)])
    assert result.exit_code == 0, result.output
    assert result.output.count("skipped (superseded)") == 2 * PEOPLE
    planned = result.output
    last = {id(row) for row in last_rows(newer).values()}
    for row in newer:
        assert (f'"{row["last_name"]}"' in planned) is (id(row) in last)


def test_a_csv_file_is_read_ahead(tmp_path: Path, url: str, platforms: list[Platform]) -> None:
    platform = Platform(BY_NAME["gleantap"], tmp_path, GleantapEmulator())
    platforms.append(platform)
    platform.write_config()
    records = rows()
    columns = ["external_id", "first_name", "last_name", "email", "phone"]
    lines = [",".join([*columns, "custom_fields.loyalty"])]
    lines += [",".join([*(r[c] for c in columns), r["custom_fields"]["loyalty"]]) for r in records]
    source = tmp_path / "in.csv"
    source.write_text("\n".join(lines) + "\n")
    first, _ = platform.upsert(source, state=url)
    assert platform.app.writes == PEOPLE
    assert first["summary"]["skipped"] == 2 * PEOPLE
    again, _ = platform.upsert(source, state=url)
    assert again["summary"]["requests"] == 0
    _assert_last_rows(platform, records)


def test_the_async_client_reads_a_list_ahead(tmp_path: Path, url: str) -> None:
    scenario = BY_NAME["ivvy"]
    app = EmulatorApp(scenario.emulator())
    records = rows()

    async def run() -> list[int]:
        sent = []
        for _ in range(2):
            async with AsyncClient(scenario.config(), "r", emulator=app, state=url) as client:
                result = client.upsert_many(copy.deepcopy(records))
                outcomes = [o async for o in result]
                assert sum(o.reason == SkipReason.SUPERSEDED for o in outcomes) == 2 * PEOPLE
                sent.append(result.summary.requests)
        return sent

    first, second = asyncio.run(run())
    assert first > 0
    assert second == 0
    holds = {v[0]: v for v in map(scenario.view, app.emulator.contacts())}
    assert holds == {k: expected(row) for k, row in last_rows(records).items()}
