"""A small cluster for the scale-out tests and the benchmark: ``contactsync worker``
processes started on a config, killed or stopped at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis


def write_config(
    path: Path,
    *,
    redis_url: str,
    state_url: str,
    tenant: str,
    provider: str,
    base_url: str,
    options: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
    scale: dict[str, Any] | None = None,
) -> Path:
    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return repr(item)
        return '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["[scale]", f"broker = {value(redis_url)}"]
    lines += [f"{k} = {value(v)}" for k, v in (scale or {}).items()]
    lines += ["", "[state]", f"url = {value(state_url)}", ""]
    lines += [
        f"[tenants.{tenant}]",
        f"provider = {value(provider)}",
        f"base_url = {value(base_url)}",
    ]
    if options:
        lines += ["", f"[tenants.{tenant}.options]"]
        lines += [f"{k} = {value(v)}" for k, v in options.items()]
    if credentials:
        lines += ["", f"[tenants.{tenant}.credentials]"]
        lines += [f"{k} = {value(v)}" for k, v in credentials.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


class Workers:
    """``contactsync worker`` processes, each in its own process group (a worker and
    its pool children die together, like a machine going away)."""

    def __init__(self, config: Path, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1, concurrency: int = 1) -> None:
        for _ in range(count):
            number = len(self.processes)
            log = (self.log_dir / f"worker-{number}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "contactsync",
                        "worker",
                        "--config",
                        str(self.config),
                        "--concurrency",
                        str(concurrency),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()

    def kill(self, number: int) -> None:
        """SIGKILL worker ``number`` and its pool processes at once."""
        os.killpg(self.processes[number].pid, signal.SIGKILL)
        self.processes[number].wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.log_dir.glob("worker-*.log"))
        )


@contextmanager
def workers(config: Path, log_dir: Path, count: int, concurrency: int = 1) -> Iterator[Workers]:
    pool = Workers(config, log_dir)
    pool.start(count, concurrency)
    try:
        yield pool
    finally:
        pool.stop()


def flush(redis_url: str) -> None:
    redis.Redis.from_url(redis_url).flushdb()
