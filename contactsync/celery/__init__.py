"""Run upserts on Celery workers (the ``celery`` extra).

* :func:`create_app` — a Celery app for a config's ``[scale]`` table, with the task
  registered (what ``contactsync worker`` runs).
* :func:`register` — add contactsync's task to **your own** Celery app (and
  :func:`configure` for the settings a lossless redelivery needs).
* :func:`upsert_distributed` — from any process: shard a tenant's input by identity,
  enqueue it, and stream back exactly one outcome per input row.
"""

from __future__ import annotations

from ._app import TASK_NAME, configure, create_app, register
from ._producer import DistributedRun, upsert_distributed

__all__ = [
    "TASK_NAME",
    "DistributedRun",
    "configure",
    "create_app",
    "register",
    "upsert_distributed",
]
