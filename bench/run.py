"""Benchmarks (``make bench``; never run by the tests).

Measures every figure side by side in one run, on generated contacts that all have an
email and a phone, and writes ``bench/results.json`` plus a table on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import email_validator
import httpx
import phonenumbers
from contactsync_gleantap import DEMO_API_KEY as G_KEY
from contactsync_gleantap import DEMO_APP_ID
from contactsync_gleantap import DEMO_SECRET_KEY as G_SECRET
from contactsync_ivvy import DEMO_API_KEY as I_KEY
from contactsync_ivvy import DEMO_API_SECRET as I_SECRET
from contactsync_yespo import DEMO_API_KEY as Y_KEY
from contactsync_yespo import YespoEmulator
from contactsync_yespo._flows import bulk_body

from contactsync import AsyncClient, Client, Outcome, _normalize, load_config
from contactsync._pipeline import Pipeline
from contactsync._wire import encode_json
from contactsync.testing import EmulatorApp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MAP_COUNT = 20_000
E2E_COUNT = 100_000
SINGLE_COUNT = 2_000
RSS_COUNT = 1_000_000
CONCURRENCY = 8

TENANTS: dict[str, dict[str, Any]] = {
    "yespo": {"provider": "yespo", "credentials": {"api_key": Y_KEY},
              "options": {"mode": "bulk", "poll_interval": 0.05}},
    "ivvy": {"provider": "ivvy", "credentials": {"api_key": I_KEY, "api_secret": I_SECRET}},
    "gleantap": {"provider": "gleantap", "credentials": {"api_key": G_KEY, "secret_key": G_SECRET},
                 "options": {"app_id": DEMO_APP_ID}},
}  # fmt: skip


def config(provider: str, **extra: Any) -> dict[str, Any]:
    table = {**TENANTS[provider], "default_phone_region": "GB", **extra}
    table.setdefault("http", {})["concurrency"] = CONCURRENCY
    return {"tenants": {"bench": table}}


def records(count: int, start: int = 0) -> Iterator[dict[str, Any]]:
    for n in range(start, start + count):
        yield {
            "external_id": f"cus-{n}",
            "first_name": f"First{n}",
            "last_name": f"Last{n}",
            "email": f"person.{n}@example{n % 97}.com",
            "phone": f"+4420{7946_0000 + n % 10_000_000:08d}",
        }


def cold() -> None:
    """Forget cached normalizations: every figure pays for validation in full."""
    _normalize.clear_caches()


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        cold()
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


# --- 1 and 2: mapping against the validators alone -------------------------------------


def map_to_bulk_bodies(pipeline: Pipeline, data: list[dict[str, Any]]) -> int:
    size = 0
    scheduler = pipeline.scheduler()
    options = pipeline.provider.options  # type: ignore[attr-defined]

    def send_ready() -> int:
        sent = 0
        while (batch := scheduler.take()) is not None:
            sent += len(encode_json(bulk_body(options, batch)))
            for item in batch:
                scheduler.release(item.index)
        return sent

    for position, record in enumerate(data):
        prepared = pipeline.prepare(position, record)
        if not isinstance(prepared, Outcome):
            scheduler.add(prepared)
            size += send_ready()
    scheduler.flush()
    return size + send_ready()


def validators_only(data: list[dict[str, Any]]) -> None:
    for row in data:
        email_validator.validate_email(row["email"], check_deliverability=False)
        number = phonenumbers.parse(row["phone"], None)
        phonenumbers.is_valid_number(number)
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# --- 3: bulk end to end over loopback --------------------------------------------------


class Emulated:
    """``contactsync emulate`` in a subprocess (its own core), with its URL."""

    def __init__(self, provider: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "contactsync", "emulate", provider, "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def stored(self) -> int:
        return len(httpx.get(f"{self.url}/__emulator__/contacts", timeout=120).json())

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def bulk_e2e(data: list[dict[str, Any]]) -> tuple[float, int]:
    emulated = Emulated("yespo")
    try:
        with Client(config("yespo", base_url=emulated.url), "bench") as client:
            cold()
            start = time.perf_counter()
            summary = client.upsert_many(data).drain()
            elapsed = time.perf_counter() - start
        assert summary.updated == len(data), summary
        assert emulated.stored() == len(data)
        return elapsed, summary.requests
    finally:
        emulated.close()


# --- 4: single requests against a hand-written loop ------------------------------------


async def raw_httpx_loop(url: str, data: list[dict[str, Any]]) -> None:
    headers = {"X-API-KEY": G_KEY, "X-SECRET-KEY": G_SECRET}
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:

        async def one(row: dict[str, Any]) -> None:
            body = {
                "app_id": DEMO_APP_ID,
                "first_name": row["first_name"],
                "last_name": row["last_name"],
                "email": row["email"],
                "phone": row["phone"],
                "user_id": row["external_id"],
            }
            async with limit:
                response = await client.post("/v2/ExternalApi/newContact", json=body)
                response.raise_for_status()

        await asyncio.gather(*(one(row) for row in data))


async def ours_async(url: str, data: list[dict[str, Any]]) -> None:
    async with AsyncClient(config("gleantap", base_url=url), "bench") as client:
        summary = await client.upsert_many(data).drain()
    assert summary.updated == len(data), summary


def single_vs_raw(data: list[dict[str, Any]]) -> dict[str, float]:
    rates: dict[str, list[float]] = {"ours": [], "raw": []}
    for _ in range(2):  # alternate, each against a fresh emulator
        for name, run in (("raw", raw_httpx_loop), ("ours", ours_async)):
            emulated = Emulated("gleantap")
            try:
                cold()
                start = time.perf_counter()
                asyncio.run(run(emulated.url, data))
                rates[name].append(len(data) / (time.perf_counter() - start))
            finally:
                emulated.close()
    return {name: max(values) for name, values in rates.items()}


# --- 5: requests per 10,000 contacts ---------------------------------------------------


def requests_per_10k() -> dict[str, dict[str, int]]:
    data = list(records(10_000))
    counts: dict[str, dict[str, int]] = {}
    ticks = iter(range(10**9))
    emulator = YespoEmulator(clock=lambda: next(ticks) * 0.001)

    with Client(
        config("yespo"), "bench", emulator=EmulatorApp(emulator), sleep=lambda s: None
    ) as client:
        counts["yespo"] = {"ours": client.upsert_many(data).drain().requests, "naive": len(data)}
    for provider in ("ivvy", "gleantap"):
        # Counted from the plan: these flows send the same requests whatever the answers
        # (iVvy: look-up, then write; Gleantap with external ids: one write).
        with Client(config(provider), "bench") as client:
            planned = sum(1 for item in client.plan(data) if not isinstance(item, Outcome))
        counts[provider] = {"ours": planned, "naive": len(data)}
    return counts


# --- 6 and 7: memory and import time ---------------------------------------------------

# VmHWM, not getrusage: ru_maxrss survives execve on Linux, so a child would report
# the peak of the (large) benchmark process that started it.
RSS_SCRIPT = """
import json, sys
from contactsync import Client, Outcome
sys.path.insert(0, {root!r})
from bench.run import config, records
with Client(config("yespo"), "bench") as client, open("/dev/null", "w") as sink:
    for item in client.plan(records({count})):
        if not isinstance(item, Outcome):
            sink.write(json.dumps(item.to_json()))
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def peak_rss_mb(count: int) -> tuple[float, float]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT.format(root=str(ROOT), count=count)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - start


def import_ms() -> dict[str, float]:
    def timed(code: str) -> float:
        samples = []
        for _ in range(7):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            samples.append((time.perf_counter() - start) * 1000)
        return statistics.median(samples)

    return {"import_contactsync": timed("import contactsync"), "bare_python": timed("pass")}


def in_a_fresh_process(module: str, function: str) -> Any:
    """``module.function()`` run by a new interpreter, its JSON result: what the earlier
    figures left in this process (a heap of a million contacts' worth of garbage
    collections, threads, caches) must not weigh on a figure measured after them."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
        f"from {module} import {function}; print(json.dumps({function}()))"
    )
    child = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


def figures_of_incremental() -> dict[str, Any]:
    result: dict[str, Any] = in_a_fresh_process("bench.incremental", "figures")
    return result


def main() -> None:
    overall = time.perf_counter()
    data = list(records(MAP_COUNT))
    pipeline = Pipeline(load_config(config("yespo")).tenant("bench"),
                        Client(config("yespo"), "bench").provider)  # fmt: skip
    mapping = best_of(3, lambda: map_to_bulk_bodies(pipeline, data))
    validators = best_of(3, lambda: validators_only(data))

    big = list(records(E2E_COUNT, start=MAP_COUNT))
    big_mapping = best_of(1, lambda: map_to_bulk_bodies(pipeline, big))
    e2e, e2e_requests = bulk_e2e(big)

    single = single_vs_raw(list(records(SINGLE_COUNT)))
    glue = in_a_fresh_process("bench.vs_glue", "all_figures")
    per_10k = requests_per_10k()
    imports = import_ms()
    incremental = figures_of_incremental()  # its process pins itself to one core

    results = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
        },
        "map_contacts_per_s": round(MAP_COUNT / mapping),
        "overhead_vs_validators": round(mapping / validators, 3),
        "bulk_e2e_vs_mapping": round(e2e / big_mapping, 3),
        "bulk_e2e": {"contacts": E2E_COUNT, "seconds": round(e2e, 2),
                     "mapping_seconds": round(big_mapping, 2), "requests": e2e_requests},
        "single_vs_raw_httpx": round(single["ours"] / single["raw"], 3),
        "single": {"contacts": SINGLE_COUNT, "concurrency": CONCURRENCY,
                   "ours_per_s": round(single["ours"]), "raw_per_s": round(single["raw"])},
        **{f"vs_glue_{name}": figure["ratio"] for name, figure in glue.items()},
        "vs_glue": glue,
        "requests_per_10k": per_10k,
        **_kept_large_figures(),
        "import_ms": round(imports["import_contactsync"], 1),
        "import_ms_bare_python": round(imports["bare_python"], 1),
        "targets": {"map_contacts_per_s": "reported", "overhead_vs_validators": "<= 1.2",
                    "bulk_e2e_vs_mapping": "<= 1.3", "single_vs_raw_httpx": ">= 0.9",
                    "vs_glue_yespo_30000": "<= 0.9", "vs_glue_yespo_100000": "<= 0.9",
                    "vs_glue_gleantap": "<= 1.0", "vs_glue_ivvy": "<= 1.0",
                    "peak_rss_mb_1m": "<= 200", "import_ms": "<= 200"},
        "incremental": incremental,
        "total_seconds": round(time.perf_counter() - overall, 1),
    }  # fmt: skip
    Path(__file__).with_name("results.json").write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        if key not in ("machine", "targets"):
            print(f"{key:24} {json.dumps(value)}")


LARGE_FIGURES = ("peak_rss_mb_1m", "peak_rss_run_seconds")


def _kept_large_figures() -> dict[str, Any]:
    """The 1,000,000-contact figures ``make bench-large`` last wrote (``--large``):
    ``make bench`` does not measure them again, to stay under ten minutes."""
    path = Path(__file__).with_name("results.json")
    existing = json.loads(path.read_text()) if path.exists() else {}
    return {key: existing[key] for key in LARGE_FIGURES if key in existing}


def large() -> None:
    """``peak_rss_mb_1m``: measured by ``make bench-large``, written into results.json."""
    rss, rss_seconds = peak_rss_mb(RSS_COUNT)
    path = Path(__file__).with_name("results.json")
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing.update(
        {"peak_rss_mb_1m": round(rss, 1), "peak_rss_run_seconds": round(rss_seconds, 1)}
    )
    path.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"peak_rss_mb_1m {rss:.1f} (run {rss_seconds:.1f} s)")


if __name__ == "__main__":
    large() if sys.argv[1:] == ["--large"] else main()
