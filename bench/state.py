"""State store benchmark (``uv run --frozen python bench/state.py``; never a test).

Times the engine's calls on 1,000 identities (best of 20 runs): ``get_many``,
``mark_in_flight``, ``confirm``, ``record_failure``, each beside a baseline doing the
same work with the bare driver (sqlite3 / psycopg executemany and a plain
``SELECT … IN``), so a figure reads as a ratio. SQLite always; PostgreSQL too when its
server binaries are installed (a throw-away server from ``tests/servers.py``).
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from contactsync._state import Confirmed, FailedEntry, StateStore, open_store  # noqa: E402
from contactsync._state._url import parse  # noqa: E402
from tests.servers import PostgresServer, postgres_binaries  # noqa: E402

N = 1_000
RUNS = 20
TENANT = "bench"


def best(work: Callable[[], object], runs: int = RUNS) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def entries(round_: int) -> list[Confirmed]:
    return [
        Confirmed(
            f"external_id=cus-{n}",
            f"{round_:032x}",
            "m" * 32,
            "updated",
            remote_id=f"r{n}",
            raw_hash=f"{n:032x}",
        )
        for n in range(N)
    ]


KEYS = [f"external_id=cus-{n}" for n in range(N)]


def store_figures(store: StateStore) -> dict[str, tuple[float, float]]:
    counter = iter(range(10**9))
    store.confirm(TENANT, entries(0))  # warm: rows exist, statements compiled
    store.get_many(TENANT, KEYS)
    run_id = store.begin_run(TENANT)
    batch = entries(1)
    failures = [FailedEntry(k, "platform_error") for k in KEYS]
    return {
        "get_many": best(lambda: store.get_many(TENANT, KEYS)),
        "mark_in_flight": best(lambda: store.mark_in_flight(TENANT, run_id, KEYS)),
        "confirm": best(lambda: store.confirm(TENANT, entries(next(counter)))),
        "confirm (entries prebuilt)": best(lambda: store.confirm(TENANT, batch)),
        "record_failure": best(lambda: store.record_failure(TENANT, failures)),
    }


ROWS = [
    (TENANT, e.key, e.fingerprint, e.mapping_fingerprint, e.raw_hash, e.remote_id, e.status)
    for e in entries(2)
]


def sqlite_baseline(path: str) -> dict[str, tuple[float, float]]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS b (tenant TEXT, key TEXT, fp TEXT, mfp TEXT, raw TEXT,"
        " rid TEXT, status TEXT, PRIMARY KEY (tenant, key))"
    )
    upsert = (
        "INSERT INTO b VALUES (?,?,?,?,?,?,?) ON CONFLICT (tenant, key) DO UPDATE SET"
        " fp=excluded.fp, mfp=excluded.mfp, raw=excluded.raw,"
        " rid=coalesce(excluded.rid, b.rid), status=excluded.status"
    )

    def write() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(upsert, ROWS)
        conn.execute("COMMIT")

    select = f"SELECT * FROM b WHERE tenant=? AND key IN ({','.join('?' * N)})"

    def read() -> None:
        conn.execute("BEGIN")
        conn.execute(select, [TENANT, *KEYS]).fetchall()
        conn.execute("COMMIT")

    write()
    try:
        return {"baseline read": best(read), "baseline upsert": best(write)}
    finally:
        conn.close()


def postgres_baseline(url: str) -> dict[str, tuple[float, float]]:
    parsed = parse(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS b (tenant TEXT, key TEXT, fp TEXT, mfp TEXT, raw TEXT,"
            " rid TEXT, status TEXT, PRIMARY KEY (tenant, key))"
        )
        conn.commit()
        upsert = (
            "INSERT INTO b VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (tenant, key) DO UPDATE"
            " SET fp=excluded.fp, mfp=excluded.mfp, raw=excluded.raw,"
            " rid=coalesce(excluded.rid, b.rid), status=excluded.status"
        )

        def write() -> None:
            with conn.cursor() as cur:
                cur.executemany(upsert, ROWS)
            conn.commit()

        def read() -> None:
            conn.execute("SELECT * FROM b WHERE tenant=%s AND key = ANY(%s)", [TENANT, KEYS])
            conn.commit()

        write()
        return {"baseline read": best(read), "baseline upsert": best(write)}


def report(name: str, figures: dict[str, tuple[float, float]]) -> None:
    print(f"\n{name}: {N} identities, best and median of {RUNS} runs")
    read = figures["baseline read"][0]
    write = figures["baseline upsert"][0]
    for label, (low, median) in figures.items():
        base = read if label in ("get_many", "baseline read") else write
        ms, med = low * 1000, median * 1000
        print(f"  {label:28} {ms:7.2f} ms  (median {med:7.2f})  {low / base:5.2f}x")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        with open_store(f"sqlite:///{folder}/state.db") as store:
            figures = store_figures(store)
        figures.update(sqlite_baseline(f"{folder}/baseline.db"))
        report("SQLite (WAL, synchronous=NORMAL)", figures)
    bindir = postgres_binaries()
    if bindir is None:
        print("\nPostgreSQL: skipped (no server binaries; apt-get install postgresql)")
        return
    with PostgresServer(bindir) as server:
        with open_store(server.url()) as store:
            figures = store_figures(store)
        figures.update(postgres_baseline(server.url()))
        report("PostgreSQL (loopback, fsync=off)", figures)


if __name__ == "__main__":
    main()
