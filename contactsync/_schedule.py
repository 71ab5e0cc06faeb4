"""Identity-aware batching: who may be sent now, and with whom.

Sans-IO, so the engine and the planner share it. Every prepared contact carries the
identity keys its platform matches on (``Prepared.identity``). Per key, the rows that
hold it form a queue in input order; a row is *ready* when it heads the queue of every
key it holds. Only ready rows enter a batch, so two rows for one person are never in
flight at once (nor in one bulk request) and they reach the platform in input order:
the last row for a person wins.

A row that has to wait flushes the open batch holding the row it waits for, rather
than letting that batch wait to fill up.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Hashable
from typing import Any

from ._provider import Prepared, Provider

Batch = list[Prepared[Any]]


class Scheduler:
    def __init__(self, provider: Provider[Any], max_batch: int, max_open: int = 128) -> None:
        self._provider = provider
        self._max = max(1, max_batch)
        self._max_open = max(1, max_open)
        """Open batches at most: past it, the fullest is sent (sparse inputs have many
        field sets; waiting for each to fill would hold rows back for long)."""
        self._opened: dict[Hashable, float] = {}
        self._queues: dict[str, deque[int]] = {}
        self._rows: dict[int, Prepared[Any]] = {}
        """Every row taken and not yet released, by input index."""
        self._open: dict[Hashable, Batch] = {}
        self._open_key: dict[int, Hashable] = {}
        """Rows sitting in an open (unsent) batch, and that batch's key."""
        self._ready: deque[Batch] = deque()
        self._waiting: set[int] = set()
        """Rows taken that wait for an earlier row of one of their identities."""

    @property
    def buffered(self) -> int:
        """Rows taken and not yet released (waiting, batched or in flight)."""
        return len(self._rows)

    @property
    def open_rows(self) -> int:
        return len(self._open_key)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def has_ready(self) -> bool:
        return bool(self._ready)

    def add(self, item: Prepared[Any]) -> None:
        if item.index in self._rows:
            raise ValueError(f"input index {item.index} was given twice")
        self._rows[item.index] = item
        ready = True
        queues = self._queues
        for key in item.identity:
            queue = queues.get(key)
            if queue is None:
                queues[key] = deque((item.index,))
                continue
            if queue:
                ready = False
                # Whoever heads that queue holds us up: if it is still sitting in an
                # open batch, send that batch now.
                self._flush_batch_of(queue[0])
            queue.append(item.index)
        if ready:
            self._enqueue(item)
        else:
            self._waiting.add(item.index)

    def take(self) -> Batch | None:
        """The next batch to send, if any is ready (full or flushed)."""
        return self._ready.popleft() if self._ready else None

    def flush(self) -> None:
        """Make every open batch ready, largest first."""
        for key in sorted(self._open, key=lambda k: -len(self._open[k])):
            self._flush_key(key)

    def is_taken(self, index: int) -> bool:
        return index in self._rows

    def drain(self) -> Batch:
        """Every row not yet released, forgotten (a last resort: see ``_strand``)."""
        rows = list(self._rows.values())
        self._rows.clear()
        self._queues.clear()
        self._open.clear()
        self._opened.clear()
        self._open_key.clear()
        self._ready.clear()
        self._waiting.clear()
        return rows

    def holds(self, key: str) -> bool:
        """Whether a row with identity ``key`` is taken and not finished."""
        return key in self._queues

    def flush_largest(self) -> None:
        """Make the fullest open batch ready."""
        if self._open:
            self._flush_key(max(self._open, key=lambda k: len(self._open[k])))

    def flush_older_than(self, moment: float) -> None:
        """Send the open batches opened before ``moment`` (``time.monotonic()``)."""
        for key in [k for k, opened in self._opened.items() if opened < moment]:
            self._flush_key(key)

    def release(self, index: int) -> None:
        """Row ``index`` is finished: the next rows of its identities may go."""
        item = self._rows.pop(index, None)
        if item is None:
            return
        successors = []
        for key in item.identity:
            queue = self._queues[key]
            # A row only runs while it heads every queue it is in.
            if queue and queue[0] == index:
                queue.popleft()
            else:  # pragma: no cover - defensive: never happens by construction
                queue.remove(index)
            if queue:
                successors.append(queue[0])
            else:
                del self._queues[key]
        if not successors:
            return
        for successor in dict.fromkeys(successors):
            row = self._rows[successor]
            if successor in self._waiting and self._is_ready(row):
                self._enqueue(row)

    def _is_ready(self, item: Prepared[Any]) -> bool:
        return all(self._queues[key][0] == item.index for key in item.identity)

    def _enqueue(self, item: Prepared[Any]) -> None:
        self._waiting.discard(item.index)
        if self._max == 1:
            self._ready.append([item])
            return
        key = self._provider.batch_key(item)
        batch = self._open.get(key)
        if batch is None:
            if len(self._open) >= self._max_open:
                self._flush_key(max(self._open, key=lambda k: len(self._open[k])))
            batch = self._open[key] = []
            self._opened[key] = time.monotonic()
        batch.append(item)
        self._open_key[item.index] = key
        if len(batch) >= self._max:
            self._flush_key(key)

    def _flush_batch_of(self, index: int) -> None:
        if index in self._open_key:
            self._flush_key(self._open_key[index])

    def _flush_key(self, key: Hashable) -> None:
        batch = self._open.pop(key, None)
        self._opened.pop(key, None)
        if not batch:
            return
        for item in batch:
            del self._open_key[item.index]
        self._ready.append(batch)
