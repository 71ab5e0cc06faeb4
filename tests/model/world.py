"""The world the model suite drives: the three platforms' emulators on loopback (two
accounts each), the real CLI run in-process, seeding through each platform's documented
API. Nothing here decides what is right; :mod:`tests.model.model` does."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from contactsync_gleantap import DEMO_API_KEY as G_KEY
from contactsync_gleantap import DEMO_APP_ID, GleantapEmulator
from contactsync_gleantap import DEMO_SECRET_KEY as G_SECRET
from contactsync_ivvy import DEMO_API_KEY as I_KEY
from contactsync_ivvy import DEMO_API_SECRET as I_SECRET
from contactsync_ivvy import IvvyEmulator
from contactsync_yespo import DEMO_API_KEY as Y_KEY
from contactsync_yespo import YespoEmulator

from contactsync import AsyncClient, Client
from contactsync._cli import main
from contactsync.testing import Emulator, EmulatorApp, Faults, serve_in_thread

PROVIDERS = ("gleantap", "ivvy", "yespo")


class LoggingApp(EmulatorApp):
    """An emulator app that keeps its fault log per request: the fault each request
    met (None when answered normally) and its body, for the model to read."""

    def __init__(self, emulator: Emulator, faults: Faults | None = None) -> None:
        super().__init__(emulator, faults)
        self.log: list[tuple[str | None, bytes]] = []
        self._log_lock = threading.Lock()
        self.gate: threading.Event | None = None
        """While set to an unset event, requests carrying ``gated`` in their body wait
        for it (a run held inside the platform, for as long as the test wants)."""
        self.gated = b""
        self.arrived = threading.Event()
        """Set when a gated request has arrived."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        gate = self.gate
        if gate is not None and self.gated and self.gated in request.content:
            self.arrived.set()
            gate.wait(timeout=120)  # a safety net, not a speed bound
        return super().__call__(request)

    def _answer(self, request: httpx.Request) -> tuple[httpx.Response, str | None]:
        try:
            response, fault = super()._answer(request)
        except httpx.TransportError:
            with self._log_lock:
                self.log.append(("drop", request.content))
            raise
        with self._log_lock:
            self.log.append((fault, request.content))
        return response, fault


class Ticks:
    """Yespo's 60-second repeat window on a clock the test moves (a minute per run)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def _emulator(provider: str, ticks: Ticks) -> Emulator:
    if provider == "gleantap":
        return GleantapEmulator()
    if provider == "ivvy":
        emulator = IvvyEmulator()
        emulator.add_field(501)
        return emulator
    return YespoEmulator(clock=ticks)


def tenant(
    provider: str,
    base_url: str,
    *,
    concurrency: int,
    retry_for: float | None,
    update_if_exists: bool = True,
) -> str:
    http = f"concurrency = {concurrency}\nbackoff_base = 0.0\nbackoff_max = 0.0\nmax_retries = 6\n"
    if retry_for is not None:
        http += f"retry_for = {retry_for}\n"
    head = f'[tenants.t]\nprovider = "{provider}"\nbase_url = "{base_url}"\ndefault_phone_region = "GB"\n'
    if provider == "gleantap":
        body = (f'[tenants.t.credentials]\napi_key = "{G_KEY}"\nsecret_key = "{G_SECRET}"\n'
                f'[tenants.t.custom_fields]\nloyalty = "loyalty"\n'
                f'[tenants.t.options]\napp_id = "{DEMO_APP_ID}"\n')  # fmt: skip
    elif provider == "ivvy":
        body = (f'[tenants.t.credentials]\napi_key = "{I_KEY}"\napi_secret = "{I_SECRET}"\n'
                "[tenants.t.custom_fields]\nloyalty = 501\n"
                f"[tenants.t.options]\nupdate_if_exists = {str(update_if_exists).lower()}\n")  # fmt: skip
    else:
        body = (f'[tenants.t.credentials]\napi_key = "{Y_KEY}"\n'
                "[tenants.t.custom_fields]\nloyalty = 1001\n"
                '[tenants.t.options]\nmode = "realtime"\n')  # fmt: skip
    return head + body + "[tenants.t.http]\n" + http


class Platform:
    """One account of one platform, served on loopback."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.ticks = Ticks()
        self.emulator = _emulator(provider, self.ticks)
        self.app = LoggingApp(self.emulator)
        self.server, self.url = serve_in_thread(self.app)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def reset(self) -> None:
        """An empty account again (servers are kept: starting one costs more than a run)."""
        self.emulator.reset()
        self.faults(Faults())
        self.app.log.clear()

    def faults(self, faults: Faults) -> None:
        fresh = LoggingApp(self.emulator, faults)
        self.app.faults, self.app._random = fresh.faults, fresh._random
        self.app.faults_injected = fresh.faults_injected

    def records(self) -> list[dict[str, Any]]:
        """The platform's records, read directly from the emulator."""
        answer = self.http.get("/__emulator__/contacts")
        answer.raise_for_status()
        records: list[dict[str, Any]] = answer.json()
        return records

    def seed(self, people: Sequence[dict[str, Any]]) -> None:
        """Contacts the library did not write, made through the platform's own API (the
        requests its documentation gives) or, for iVvy, as made in its UI."""
        for p in people:
            if self.provider == "gleantap":
                body = {"app_id": DEMO_APP_ID, "first_name": p["first_name"],
                        "last_name": p["last_name"], "loyalty": p["token"],
                        **{k: p[k] for k in ("email", "phone") if p.get(k)},
                        **({"user_id": p["external_id"]} if p.get("external_id") else {})}  # fmt: skip
                self.http.post("/v2/ExternalApi/newContact", json=body,
                               headers={"X-API-KEY": G_KEY, "X-SECRET-KEY": G_SECRET}).raise_for_status()  # fmt: skip
            elif self.provider == "ivvy":
                assert isinstance(self.emulator, IvvyEmulator)
                # Numbered as iVvy numbers every contact, however made: another
                # account's ids may name these.
                self.emulator.insert({"id": next(self.emulator._ids), "firstName": p["first_name"],
                                      "lastName": p["last_name"], "email": p.get("email"),
                                      "phone": p.get("phone"), "externalId": p.get("external_id"),
                                      "customFields": {501: p["token"]}, "groups": {},
                                      "companies": [], "status": 1, "smsStatus": 1})  # fmt: skip
            else:
                body = {"firstName": p["first_name"], "lastName": p["last_name"],
                        "channels": [{"type": "email", "value": p["email"]}],
                        "fields": [{"id": 1001, "value": p["token"]}],
                        **({"externalCustomerId": p["external_id"]} if p.get("external_id") else {})}  # fmt: skip
                self.http.post(
                    "/api/v1/contact", json=body, auth=("seed", Y_KEY)
                ).raise_for_status()
        self.app.log.clear()

    def close(self) -> None:
        self.http.close()
        self.server.shutdown()
        self.server.server_close()


_POOL: dict[tuple[str, str], Platform] = {}


def platform(provider: str, account: str) -> Platform:
    """The account's platform, emptied; one server per provider and account for the
    whole session (closed at exit with the process)."""
    found = _POOL.get((provider, account))
    if found is None:
        found = _POOL[(provider, account)] = Platform(provider)
    found.reset()
    return found


def run_cli(
    workdir: Path,
    config: str,
    rows: Sequence[dict[str, Any]] | Path,
    *,
    state: str | None,
    name: str,
) -> tuple[int, list[dict[str, Any]], Path, str]:
    """``contactsync upsert`` in-process; returns its exit code, the report's outcomes,
    the ``--failed`` file and its output."""
    (workdir / "c.toml").write_text(config)
    if isinstance(rows, Path):
        source = rows
    else:
        source = workdir / f"{name}.jsonl"
        source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    report, failed = workdir / f"{name}.report.json", workdir / f"{name}.failed.jsonl"
    args = ["-q", "upsert", "--config", str(workdir / "c.toml"), "--tenant", "t", str(source),
            "--report", str(report), "--failed", str(failed)]  # fmt: skip
    if state is not None:
        args += ["--state", state]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert report.exists(), result.output
    outcomes = json.loads(report.read_text())["outcomes"]
    return result.exit_code, outcomes, failed, result.output


def run_client(
    workdir: Path,
    config: str,
    rows: Sequence[dict[str, Any]],
    *,
    state: str | None,
    use_async: bool,
    one_shot: bool = False,
) -> list[dict[str, Any]]:
    """The same rows through ``Client`` or ``AsyncClient``; the outcomes as the report
    writes them. ``one_shot``: given as an iterator, which is not read ahead (rows go in
    input order, a person's earlier rows too)."""

    def given() -> Any:
        return iter(list(rows)) if one_shot else list(rows)

    path = workdir / "client.toml"
    path.write_text(config)
    if not use_async:
        with Client(path, "t", state=state) as client:
            return [o.to_json() for o in client.upsert_many(given())]

    async def go() -> list[dict[str, Any]]:
        async with AsyncClient(path, "t", state=state) as client:
            return [o.to_json() async for o in client.upsert_many(given())]

    return asyncio.run(go())
