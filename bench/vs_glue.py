"""contactsync against the hand-written glue (``bench/glue.py``), side by side.

Each pair runs the glue and contactsync alternately against a fresh server of the same
kind, on the same input, at the same concurrency; a figure is the median over the pairs
of (contactsync's time ÷ the glue's time), so a slow moment of the shared machine hits
both sides of one pair rather than one side of the figure.

- Yespo: ``contactsync emulate yespo`` in its own process (bulk is not limited by it);
  after each run the emulator must hold exactly the same contacts.
- Gleantap, iVvy (one call per contact, or two): ``bench/stub.py``, which answers the
  documented success body thousands of times a second; the emulators manage a few
  hundred, so against them both sides would measure the emulator. That the glue writes
  the same data as contactsync is checked once, on a small input, against the emulator.

``python bench/vs_glue.py [yespo|gleantap|ivvy ...]`` prints the figures.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from contactsync_gleantap import DEMO_API_KEY as G_KEY
from contactsync_gleantap import DEMO_APP_ID
from contactsync_gleantap import DEMO_SECRET_KEY as G_SECRET
from contactsync_ivvy import DEMO_API_KEY as I_KEY
from contactsync_ivvy import DEMO_API_SECRET as I_SECRET
from contactsync_yespo import DEMO_API_KEY as Y_KEY

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import glue
from bench.run import CONCURRENCY, Emulated, cold, config, records
from contactsync import AsyncClient, Client

PAIRS = 3
POLL_INTERVAL = 0.05  # both sides wait this long before each import-status poll
STUB = Path(__file__).with_name("stub.py")


class Stub:
    """``bench/stub.py`` in its own process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(STUB)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def answered(self) -> int:
        return int(httpx.get(f"{self.url}/__stub__/count").text)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _stored(url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/__emulator__/contacts", timeout=120).json())


_VOLATILE = frozenset({"id", "created", "modified", "modifiedDate", "createdDate", "_id"})


def comparable(contacts: list[dict[str, Any]]) -> list[str]:
    """The stored contacts less the ids and timestamps the server gives each write."""
    return sorted(
        json.dumps({k: v for k, v in c.items() if k not in _VOLATILE}, sort_keys=True)
        for c in contacts
    )


# --- one timed run of each side -------------------------------------------------------


def ours_yespo(url: str, data: list[dict[str, Any]]) -> int:
    options = {"mode": "bulk", "poll_interval": POLL_INTERVAL}
    table = config("yespo", base_url=url)
    table["tenants"]["bench"]["options"] = options
    with Client(table, "bench") as client:
        summary = client.upsert_many(data).drain()
    assert summary.updated + summary.created == len(data), summary
    return summary.requests


def glue_yespo(url: str, data: list[dict[str, Any]]) -> int:
    return glue.yespo(url, Y_KEY, data, POLL_INTERVAL)


def _ours_async(provider: str) -> Callable[[str, list[dict[str, Any]]], int]:
    def run(url: str, data: list[dict[str, Any]]) -> int:
        async def go() -> int:
            async with AsyncClient(config(provider, base_url=url), "bench") as client:
                summary = await client.upsert_many(data).drain()
            assert summary.updated + summary.created == len(data), summary
            return summary.requests

        return asyncio.run(go())

    return run


def glue_gleantap(url: str, data: list[dict[str, Any]]) -> int:
    return asyncio.run(glue.gleantap(url, (G_KEY, G_SECRET), DEMO_APP_ID, data, CONCURRENCY))


def glue_ivvy(url: str, data: list[dict[str, Any]]) -> int:
    return asyncio.run(glue.ivvy(url, (I_KEY, I_SECRET), data, CONCURRENCY))


SIDES: dict[str, tuple[Callable[[str, list[dict[str, Any]]], int], ...]] = {
    "yespo": (ours_yespo, glue_yespo),
    "gleantap": (_ours_async("gleantap"), glue_gleantap),
    "ivvy": (_ours_async("ivvy"), glue_ivvy),
}


# --- pairs ----------------------------------------------------------------------------


def _timed(
    provider: str, side: Callable[[str, list[dict[str, Any]]], int], data: list[dict[str, Any]]
) -> tuple[float, int, list[str] | None]:
    """One run against a fresh server: seconds, requests, and what it stored (emulator)."""
    server: Emulated | Stub = Emulated(provider) if provider == "yespo" else Stub()
    try:
        cold()
        start = time.perf_counter()
        requests = side(server.url, data)
        elapsed = time.perf_counter() - start
        if isinstance(server, Stub):
            assert server.answered() == requests, (server.answered(), requests)
            return elapsed, requests, None
        stored = comparable(_stored(server.url))
        assert len(stored) == len(data), (len(stored), len(data))
        return elapsed, requests, stored
    finally:
        server.close()


def pairs(provider: str, count: int, runs: int = PAIRS) -> dict[str, Any]:
    data = list(records(count))
    ours, theirs = SIDES[provider]
    ratios, ours_s, glue_s = [], [], []
    requests = {}
    for side in (theirs, ours):  # warm up: imports, first connections, not timed
        _timed(provider, side, data[:500])
    for _ in range(runs):
        glue_time, requests["glue"], glue_stored = _timed(provider, theirs, data)
        our_time, requests["ours"], our_stored = _timed(provider, ours, data)
        assert glue_stored == our_stored, "the glue and contactsync stored different data"
        ratios.append(our_time / glue_time)
        ours_s.append(our_time)
        glue_s.append(glue_time)
    return {
        "ratio": round(statistics.median(ratios), 3),
        "contacts": count,
        "pairs": runs,
        "ours_s": [round(s, 2) for s in ours_s],
        "glue_s": [round(s, 2) for s in glue_s],
        "requests": requests,
        "server": "contactsync emulate yespo" if provider == "yespo" else "bench/stub.py",
    }


def same_data(provider: str, count: int = 200) -> bool:
    """Against the emulator: the glue leaves the platform holding what contactsync does."""
    data = list(records(count))
    stored = []
    for side in SIDES[provider]:
        emulated = Emulated(provider)
        try:
            side(emulated.url, data)
            stored.append(comparable(_stored(emulated.url)))
        finally:
            emulated.close()
    return stored[0] == stored[1] and len(stored[0]) == count


SIZES = {"yespo": (30_000, 100_000), "gleantap": (2_000,), "ivvy": (2_000,)}


def all_figures(wanted: Sequence[str] = tuple(SIZES)) -> dict[str, dict[str, Any]]:
    """``vs_glue_<provider>`` (``_<count>`` for Yespo's two sizes), printed as they come."""
    figures: dict[str, dict[str, Any]] = {}
    for provider in wanted:
        if provider != "yespo":
            assert same_data(provider), f"the {provider} glue stores other data"
        for count in SIZES[provider]:
            name = f"{provider}_{count}" if provider == "yespo" else provider
            figures[name] = pairs(provider, count)
            print(f"vs_glue_{name}", json.dumps(figures[name]), flush=True)
    return figures


def main() -> None:
    all_figures(sys.argv[1:] or tuple(SIZES))


if __name__ == "__main__":
    main()
