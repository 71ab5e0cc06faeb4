"""The model across processes: a run killed with SIGKILL and resumed on its state store,
and two runs of one tenant on one store at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.model import inputs
from tests.model.known import checked
from tests.model.model import INVARIANTS, Account, Row, Run, check_run, observe, seeded_views, view
from tests.model.world import PROVIDERS, platform, run_cli, tenant

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("CONTACTSYNC_MODEL_EXAMPLES", "0"))


def _rows(raw: list[dict[str, Any]], start: int) -> list[Row]:
    return [
        Row(
            start + n,
            f"T{start + n:06d}",
            {**data, "custom_fields": {"loyalty": f"T{start + n:06d}"}},
        )
        for n, data in enumerate(raw)
    ]


def _spawn(
    workdir: Path, config: str, source: Path, state: str, name: str
) -> subprocess.Popen[str]:
    (workdir / f"{name}.toml").write_text(config)
    return subprocess.Popen(
        [sys.executable, "-m", "contactsync", "-q", "upsert", "--config", str(workdir / f"{name}.toml"),
         "--tenant", "t", str(source), "--state", state,
         "--report", str(workdir / f"{name}.report.json")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


@settings(max_examples=EXAMPLES or 3, deadline=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(data=st.data(), provider=st.sampled_from(PROVIDERS), kill_after=st.integers(1, 12))
def test_a_run_killed_with_sigkill_resumes_to_what_the_model_says(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, provider: str, kill_after: int
) -> None:
    workdir = tmp_path_factory.mktemp("killed")
    persons = data.draw(inputs.people(provider, collide=False), label="people")
    rows = _rows(data.draw(inputs.rows(persons, max_rows=24), label="rows"), 0)
    by_token = {r.token: r for r in rows}
    account = platform(provider, "A")
    account.app.latency = 0.02  # long enough a run to be killed in the middle
    model = Account("A", seeded=seeded_views(provider, account.records()))
    source = workdir / "in.jsonl"
    source.write_text("".join(json.dumps(dict(r.data), ensure_ascii=False) + "\n" for r in rows))
    state = f"sqlite:///{workdir / 'state.db'}"
    config = tenant(provider, account.url, concurrency=4, retry_for=None)
    try:
        child = _spawn(workdir, config, source, state, "killed")
        deadline = time.monotonic() + 60  # a safety net, not a speed bound
        while (
            len(account.app.log) < kill_after
            and child.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=60)
    finally:
        account.app.latency = 0.0
    records = [view(provider, r) for r in account.records()]
    observe(model, provider, records, by_token)
    before = {r["id"]: r for r in records}
    account.app.log.clear()
    _, outcomes, _, _ = run_cli(workdir, config, source, state=state, name="resumed")
    after = {r["id"]: r for r in (view(provider, x) for x in account.records())}
    run = Run(provider, rows, outcomes, before, after, list(account.app.log), faults=False)
    # Left out after a kill: a resumed run reports ``created`` for records the killed
    # run made (issue 23, why 7: outcomes that are not what happened), on every provider.
    holding = checked(provider, frozenset(INVARIANTS)) - {"created"}
    if provider == "gleantap":
        # Gleantap's ``updated`` is checked on one account since its look-ups prove it,
        # but once in about a hundred killed runs the resumed run reported ``updated``
        # for a record missing from the snapshot taken after the kill: not yet
        # explained (suspected: a request of the killed process applied after the
        # snapshot). Its ``created`` held in those hundred examples.
        holding -= {"updated"}
    broken = [f"[{n}] {line}" for n, line in check_run(model, run, by_token) if n in holding]
    assert not broken, "\n".join(broken)


@pytest.mark.xfail(
    strict=False,
    reason="the second process is not yet made to start while the first holds the lock "
    "(it returned 0 with the lock built); the lock itself: tests/state/test_tenant_lock.py",
)
def test_a_second_run_of_a_tenant_on_one_store_is_refused(tmp_path: Path) -> None:
    account = platform("gleantap", "A")
    account.app.latency = 0.02
    rows = _rows([{"external_id": f"L{n}", "first_name": "Anna", "last_name": "Smith",
                   "email": f"l{n}@example.com"} for n in range(60)], 0)  # fmt: skip
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(dict(r.data)) + "\n" for r in rows))
    state = f"sqlite:///{tmp_path / 'state.db'}"
    config = tenant("gleantap", account.url, concurrency=2, retry_for=None)
    try:
        first = _spawn(tmp_path, config, source, state, "first")
        deadline = time.monotonic() + 60  # a safety net, not a speed bound
        while not account.app.log and time.monotonic() < deadline:
            time.sleep(0.005)
        second = _spawn(tmp_path, config, source, state, "second")
    finally:
        account.app.latency = 0.0
    _, second_err = second.communicate(timeout=120)
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert second.returncode == 1, second_err
    assert "run" in second_err.lower()  # names the holder's run id
