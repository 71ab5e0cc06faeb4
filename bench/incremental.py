"""Incremental-sync benchmark (``uv run --frozen python bench/incremental.py``, also
run by ``bench/run.py``; never a test). Writes its figures into ``bench/results.json``
under ``"incremental"``:

- ``delta_check_per_s``: unchanged contacts a repeat run settles per second through the
  whole engine (client start, input, raw-hash fast path, SQLite state store, outcomes),
  100,000 of them, the process pinned to one core; per wall-clock second and per CPU
  second of the process (with the machine's load average beside it), the median of
  three repeat runs (each listed). The first run, which fills the store, goes through
  the Yespo emulator in bulk and is not timed.
- ``repeat_run_requests``: requests of a second identical run, per provider.
- ``ivvy_requests_per_changed_contact``: iVvy with a warm identity map (a first run
  gave every id), 100 of 1,000 contacts changed.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contactsync_yespo import YespoEmulator  # noqa: E402

from bench.run import TENANTS, records  # noqa: E402
from contactsync import Client, Status  # noqa: E402
from contactsync._registry import default_registry  # noqa: E402
from contactsync.testing import EmulatorApp  # noqa: E402

DELTA_COUNT = 100_000
DELTA_REPEATS = 3
REPEAT_COUNT = 2_000
CHANGED_OF = (100, 1_000)
PROVIDERS = ("yespo", "ivvy", "gleantap")


def _config(provider: str) -> dict[str, Any]:
    table: dict[str, Any] = {**copy.deepcopy(TENANTS[provider]), "default_phone_region": "GB"}
    table["http"] = {"concurrency": 8, "backoff_base": 0.0, "backoff_max": 0.0}
    return {"tenants": {"bench": table}}


def _emulator(provider: str) -> EmulatorApp:
    if provider == "yespo":
        ticks = iter(range(10**12))
        return EmulatorApp(YespoEmulator(clock=lambda: next(ticks) * 0.001))
    return EmulatorApp(default_registry.get(provider).create_emulator())


def _run(provider: str, app: EmulatorApp, url: str, data: list[dict[str, Any]]) -> Any:
    with Client(_config(provider), "bench", emulator=app, sleep=lambda s: None, state=url) as c:
        return c.upsert_many(data).drain()


def delta_check_per_s(folder: str) -> dict[str, Any]:
    url = f"sqlite:///{folder}/delta.db"
    data = list(records(DELTA_COUNT))
    app = _emulator("yespo")
    first = _run("yespo", app, url, data)
    if first.failed or first.rejected:
        raise SystemExit(f"the first run did not write every contact: {first}")
    runs = []
    for _ in range(DELTA_REPEATS):  # a repeat run writes no record: each sees the same store
        again = copy.deepcopy(data)
        start, cpu = time.perf_counter(), time.process_time()
        summary = _run("yespo", app, url, again)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        if summary.unchanged != DELTA_COUNT or summary.requests:
            raise SystemExit(f"the repeat run was not all unchanged: {summary}")
        # CPU time too: on a shared machine the wall clock also counts other processes.
        runs.append({"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                     "load_average": round(os.getloadavg()[0], 2)})  # fmt: skip
    seconds = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu_seconds"] for r in runs)
    return {"contacts": DELTA_COUNT, "seconds": seconds, "cpu_seconds": cpu,
            "per_s": round(DELTA_COUNT / seconds), "per_cpu_s": round(DELTA_COUNT / cpu),
            "load_average": runs[-1]["load_average"], "runs": runs}  # fmt: skip


def repeat_run_requests(folder: str) -> dict[str, int]:
    counts = {}
    for provider in PROVIDERS:
        url = f"sqlite:///{folder}/repeat-{provider}.db"
        data = list(records(REPEAT_COUNT))
        app = _emulator(provider)
        _run(provider, app, url, data)
        counts[provider] = _run(provider, app, url, copy.deepcopy(data)).requests
    return counts


def ivvy_per_changed(folder: str) -> dict[str, Any]:
    changed, total = CHANGED_OF
    url = f"sqlite:///{folder}/ivvy.db"
    data = list(records(total))
    app = _emulator("ivvy")
    _run("ivvy", app, url, data)
    step = total // changed
    for n in range(0, total, step):
        data[n]["last_name"] += "-moved"
    with Client(_config("ivvy"), "bench", emulator=app, sleep=lambda s: None, state=url) as c:
        outcomes = list(c.upsert_many(data))
    written = [o for o in outcomes if o.status is not Status.UNCHANGED]
    assert len(written) == changed, len(written)
    requests = sum(o.requests for o in outcomes)
    return {"changed": changed, "of": total, "requests": requests,
            "per_changed_contact": round(requests / changed, 3)}  # fmt: skip


def figures() -> dict[str, Any]:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    with tempfile.TemporaryDirectory() as folder:
        delta = delta_check_per_s(folder)
        return {
            "delta_check_per_s": delta["per_s"],
            "delta_check": delta,
            "repeat_run_requests": repeat_run_requests(folder),
            "ivvy_warm_map": ivvy_per_changed(folder),
            "targets": {"delta_check_per_s": ">= 50000", "repeat_run_requests": "0",
                        "ivvy_requests_per_changed_contact": "1"},
        }  # fmt: skip


def main() -> None:
    result = figures()
    path = Path(__file__).with_name("results.json")
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing["incremental"] = result
    path.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
