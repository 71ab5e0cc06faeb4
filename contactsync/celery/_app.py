"""The Celery app and task: configuration a lossless redelivery needs."""

from __future__ import annotations

import threading
from typing import Any

from celery import Celery, Task

from .._client import ConfigSource
from .._config import Config, ScaleConfig, load_config
from .._scale._lease import LEASE_TTL
from .._scale._worker import ChunkRunner, ShardBusy

TASK_NAME = "contactsync.upsert_chunk"


def _loaded(config: ConfigSource) -> Config:
    return config if isinstance(config, Config) else load_config(config)


def _scale(config: Config) -> ScaleConfig:
    if config.scale is None:
        raise ValueError("the config has no [scale] table (broker = redis://...)")
    return config.scale


def configure(app: Celery, scale: ScaleConfig) -> None:
    """Settings under which a chunk taken by a worker that dies is run again, not lost:
    acknowledged only once done (or handed back when its worker process is lost), one
    task taken at a time, JSON only, and the broker's visibility timeout."""
    options = {"visibility_timeout": scale.visibility_timeout}
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_transport_options=options,
        result_backend_transport_options=options,
        result_expires=7 * 24 * 3600,
        broker_connection_retry_on_startup=True,
    )


def create_app(config: ConfigSource, *, name: str = "contactsync") -> Celery:
    """A Celery app on the config's broker and result backend, task registered."""
    loaded = _loaded(config)
    scale = _scale(loaded)
    app = Celery(name, broker=scale.broker.reveal(), backend=scale.backend_url.reveal())
    configure(app, scale)
    register(app, loaded)
    return app


def register(app: Celery, config: ConfigSource) -> Task:
    """Register contactsync's chunk task on ``app`` (worker side). The config is read
    here, in the worker: task messages carry no credentials, only tenant names and rows."""
    loaded = _loaded(config)
    lock = threading.Lock()
    runners: list[ChunkRunner] = []

    def runner() -> ChunkRunner:
        # Built on first use, in the process that runs tasks (after a prefork fork).
        with lock:
            if not runners:
                runners.append(ChunkRunner(loaded))
            return runners[0]

    @app.task(  # type: ignore[untyped-decorator,unused-ignore]
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=False,
        max_retries=None,
    )
    def upsert_chunk(
        self: Task,
        run_id: str,
        tenant: str,
        shard: int,
        chunk: int,
        rows: list[tuple[int, Any]],
        full: bool = False,
    ) -> dict[str, Any]:
        try:
            return runner().run(
                run_id=run_id, tenant=tenant, shard=shard, chunk=chunk, rows=rows, full=full
            )
        except ShardBusy as busy:
            # A second copy (the broker redelivered it while its first copy still runs):
            # look again once the lease may have changed hands.
            raise self.retry(exc=busy, countdown=LEASE_TTL / 4) from None

    task: Task = upsert_chunk
    return task
