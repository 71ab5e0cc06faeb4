"""The scale-out commands: ``contactsync worker`` and ``upsert --distributed``.

Kept apart from the other commands: Celery is imported only when one of them runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from . import _cli
from ._config import Config
from ._outcome import Summary
from ._secret import Scrubber


def _celery_missing() -> None:
    _cli._fail("the scale-out commands need the celery extra: pip install 'contactsync[celery]'")


def _scale_config(config_path: Path) -> Config:
    config = _cli._load(config_path)
    if config.scale is None:
        _cli._fail(f"{config_path}: a [scale] table (broker = redis://...) is required")
    return config


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True)
@click.option(
    "--concurrency", default=1, show_default=True, type=click.IntRange(1), help="Worker processes."
)
@click.option("--loglevel", default="WARNING", show_default=True)
def worker(config_path: Path, concurrency: int, loglevel: str) -> None:
    """Run a Celery worker on the config's [scale] broker (N worker processes)."""
    config = _scale_config(config_path)
    try:
        from .celery import create_app  # noqa: PLC0415 - Celery only for this command
    except ImportError:
        _celery_missing()
    with _cli._config_errors():
        app = create_app(config)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            f"--loglevel={loglevel}",
            f"--hostname=contactsync-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@contextlib.contextmanager
def _interruptible(run: Any) -> Iterator[list[int]]:
    received: list[int] = []

    def handle(signum: int, frame: object) -> None:
        received.append(signum)
        run.cancel()

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def upsert_distributed(
    config_path: Path,
    tenant: str,
    input_path: str,
    report_path: Path | None,
    failed_path: Path | None,
    full: bool,
) -> None:
    """``upsert --distributed``: the same summary, --report and --failed as a local run."""
    config = _scale_config(config_path)
    try:
        from .celery import create_app, upsert_distributed  # noqa: PLC0415
    except ImportError:
        _celery_missing()
    from ._scale._worker import check_distributed_state  # noqa: PLC0415

    try:
        check_distributed_state(config)
    except ValueError as exc:
        _cli._fail(str(exc))
    with _cli._config_errors():
        resolved = config.tenant(tenant)
        app = create_app(config)
    scrubber = Scrubber.for_credentials(resolved.credentials)
    with contextlib.ExitStack() as stack:
        stream = stack.enter_context(_cli._open_input(input_path))
        lines = _cli._read(stream, input_path)
        report = failed = None
        if report_path is not None:
            report = _cli._ReportWriter(
                stack.enter_context(_cli._open_report(report_path)), scrubber
            )
        if failed_path is not None:
            failed = _cli._FailedWriter(
                stack.enter_context(_cli._open_failed(failed_path)), scrubber
            )
        progress = stack.enter_context(_cli._progress(_cli._count_lines(input_path)))
        task = progress.add_task("upsert", total=_cli._count_lines(input_path))
        run = upsert_distributed(app, config, tenant, lines, full=full)
        interrupts = stack.enter_context(_interruptible(run))
        summary: Summary = run.summary
        try:
            for outcome in run:
                progress.advance(task)
                if report is not None:
                    report.write(outcome)
                if failed is not None and not outcome.ok:
                    failed.write(outcome)
        finally:
            if report is not None:
                report.close(summary)
    _cli.err.print(_cli._summary_line(summary), highlight=False, markup=False)
    if interrupts:
        _cli.err.print(
            "interrupted: contacts whose chunk had not reported are failed with code "
            "outcome_unknown",
            markup=False,
        )
        raise SystemExit(_cli.EXIT_INTERRUPTED)
    if summary.rejected or summary.failed:
        raise SystemExit(_cli.EXIT_SOME_FAILED)
