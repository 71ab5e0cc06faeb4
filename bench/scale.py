"""Scale-out throughput (``make bench-scale``; never run by the tests).

1, 2 and 3 ``contactsync worker`` processes (one pool process each) upsert the same
generated contacts through ``contactsync.celery.upsert_distributed``, against

* Gleantap's emulator answering every request after 50 ms (no documented limit:
  throughput should grow with workers), and
* Yespo's emulator in real-time mode (one request per contact), enforcing its
  documented 200 requests per second: the workers share one window, so throughput
  should stay flat and no request is refused.

Needs ``redis-server`` and PostgreSQL (as the scale-out tests). Writes the figures
and the ratios to ``bench/results-scale.json`` and under ``scale_out`` in
``bench/results.json`` when that file exists.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from contactsync_gleantap import DEMO_API_KEY as G_KEY
from contactsync_gleantap import DEMO_APP_ID
from contactsync_gleantap import DEMO_SECRET_KEY as G_SECRET
from contactsync_yespo import DEMO_API_KEY as Y_KEY

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contactsync import load_config
from contactsync.celery import create_app, upsert_distributed
from tests.acceptance import emulate
from tests.scale.cluster import flush, workers, write_config
from tests.servers import PostgresServer, RedisServer, postgres_binaries

ROOT = Path(__file__).resolve().parents[1]
COUNT = 2_000
SCENARIOS: dict[str, dict[str, Any]] = {
    "gleantap, 50 ms per request": {
        "provider": "gleantap",
        "emulate": ["--latency", "0.05"],
        "credentials": {"api_key": G_KEY, "secret_key": G_SECRET},
        "options": {"app_id": DEMO_APP_ID},
    },
    "yespo real time, 200 requests/s window": {
        "provider": "yespo",
        "emulate": [],
        "credentials": {"api_key": Y_KEY},
        "options": {"mode": "realtime"},
    },
}


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"bench-{n}",
            "first_name": f"First{n}",
            "last_name": f"Last{n}",
            "email": f"bench{n}@example.com",
            "phone": f"+4420{7946_0000 + n:08d}",
        }
        for n in range(COUNT)
    ]


def _wait_ready(app: Any, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(app.control.ping(timeout=1.0) or []) >= count:
            return
    raise RuntimeError("workers did not start")


def _one(
    scenario: dict[str, Any], count: int, redis_url: str, pg: PostgresServer, folder: Path
) -> dict[str, Any]:
    flush(redis_url)
    state = pg.create_database(f"bench_{scenario['provider']}_{count}_{time.monotonic_ns()}")
    with emulate(scenario["provider"], *scenario["emulate"]) as url:
        config_path = write_config(
            folder / "contactsync.toml",
            redis_url=redis_url,
            state_url=state,
            tenant="bench",
            provider=scenario["provider"],
            base_url=url,
            options=scenario["options"],
            credentials=scenario["credentials"],
            scale={"chunk_size": 100, "shards": 12},
        )
        config = load_config(config_path)
        app = create_app(config)
        with workers(config_path, folder, count):
            _wait_ready(app, count)
            started = time.perf_counter()
            summary = upsert_distributed(app, config, "bench", _rows()).drain()
            elapsed = time.perf_counter() - started
        stats = httpx.get(f"{url}/__emulator__/stats", timeout=30).json()
    return {
        "workers": count,
        "contacts": COUNT,
        "seconds": round(elapsed, 2),
        "contacts_per_second": round(COUNT / elapsed, 1),
        "failed": summary.failed + summary.rejected,
        "requests": stats["requests"],
        "max_requests_per_second": stats["max_requests_per_second"],
        "refused_by_window": sum(limit["rejected"] for limit in stats["rate_limits"]),
    }


def main() -> None:
    folder = ROOT / "bench" / ".scale"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    binary, bindir = shutil.which("redis-server"), postgres_binaries()
    if binary is None or bindir is None:
        raise SystemExit(
            "needs redis-server and PostgreSQL (apt-get install redis-server postgresql)"
        )
    results: dict[str, Any] = {}
    with RedisServer(binary) as redis_server, PostgresServer(bindir) as pg:
        for name, scenario in SCENARIOS.items():
            runs = [_one(scenario, n, redis_server.url, pg, folder) for n in (1, 2, 3)]
            if any(run["failed"] for run in runs):
                raise SystemExit(f"{name}: contacts failed, the figures mean nothing: {runs}")
            base = runs[0]["contacts_per_second"]
            for run in runs:
                run["ratio_to_one_worker"] = round(run["contacts_per_second"] / base, 2)
                print(f"{name:42} {json.dumps(run)}", flush=True)
            results[name] = runs
    shutil.rmtree(folder, ignore_errors=True)
    (ROOT / "bench" / "results-scale.json").write_text(json.dumps(results, indent=2) + "\n")
    combined = ROOT / "bench" / "results.json"
    if combined.exists():
        data = json.loads(combined.read_text())
        data["scale_out"] = results
        combined.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
