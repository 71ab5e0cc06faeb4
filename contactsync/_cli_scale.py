"""What the scale-out commands need beyond a local run: a Celery worker for a
config, and distributed runs of ``upsert --distributed``.

Celery is imported only when one of them runs. Problems are raised as
:class:`ScaleProblem` for the command line to print.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ._config import Config
from ._pipeline import ContactInput
from ._secret import Scrubber

if TYPE_CHECKING:
    from .celery import DistributedRun

_EXTRA = "the scale-out commands need the celery extra: pip install 'contactsync[celery]'"


class ScaleProblem(Exception):
    """Why a scale-out command cannot run (said to the user as it is)."""


def _scale(config: Config) -> None:
    if config.scale is None:
        raise ScaleProblem("the config has no [scale] table (broker = redis://...)")


def run_worker(config: Config, concurrency: int, loglevel: str) -> None:
    """Run a Celery worker with ``concurrency`` processes on the config's broker."""
    _scale(config)
    try:
        from .celery import create_app  # noqa: PLC0415 - Celery only for this command
    except ImportError:
        raise ScaleProblem(_EXTRA) from None
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


class DistributedUpsert:
    """``upsert --distributed``: the scrubber for its output, and the run itself."""

    def __init__(self, config: Config, tenant: str) -> None:
        _scale(config)
        from ._scale._worker import check_distributed_state  # noqa: PLC0415

        try:
            check_distributed_state(config)
        except ValueError as exc:
            raise ScaleProblem(str(exc)) from None
        try:
            from .celery import create_app  # noqa: PLC0415
        except ImportError:
            raise ScaleProblem(_EXTRA) from None
        self.config = config
        self.tenant = tenant
        self.scrubber = Scrubber.for_credentials(config.tenant(tenant).credentials)
        self.app = create_app(config)
        _check_broker(self.app)

    def start(
        self, lines: Iterable[ContactInput], full: bool, lock_wait: float | None = 0.0
    ) -> DistributedRun:
        from .celery import upsert_distributed  # noqa: PLC0415

        return upsert_distributed(
            self.app, self.config, self.tenant, lines, full=full, lock_wait=lock_wait
        )


def _check_broker(app: Any) -> None:
    """Fail before any input is read when the broker or the result backend refuses us
    (down, wrong address, wrong password): nothing has been sent yet. Only the error's
    type is said, never its message, which may carry the URL."""
    from .celery._outage import CONNECTION_ERRORS  # noqa: PLC0415

    def broker() -> None:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1)

    def result_backend() -> None:
        app.backend.client.ping()

    checks: tuple[tuple[str, Callable[[], None]], ...] = (
        ("broker", broker),
        ("result_backend", result_backend),
    )
    unreachable: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, OSError)
    for key, check in checks:
        try:
            check()
        except unreachable as exc:
            raise ScaleProblem(
                f"cannot reach the [scale] {key} ({type(exc).__name__}): "
                "check its address and password"
            ) from None
