"""Identity sharding: rows for one person land in one shard, in input order.

Every prepared row carries its identity keys (``Prepared.identity``: external id,
email, phone... whichever the platform matches on). Rows that share any key are the
same person as far as the platform can tell, and so are rows linked through a chain
of shared keys (row 1 and 2 share an email, row 2 and 3 a phone). Such a group is a
*component*; a component is never split across shards, so no two workers ever hold
one person at once and no lock on a key is needed while a run is under way. Inside
a shard rows keep their input order, and a shard's chunks run one after another.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

import attrs


@attrs.frozen
class Row:
    """One input row sent to a worker: its index in the whole input and its record."""

    index: int
    record: Any
    identity: tuple[str, ...] = ()


class _Components:
    """Union-find over row positions, joined through the keys they share."""

    def __init__(self, size: int) -> None:
        self._parent = list(range(size))

    def find(self, item: int) -> int:
        root = item
        while self._parent[root] != root:
            root = self._parent[root]
        while self._parent[item] != root:  # path compression
            self._parent[item], item = root, self._parent[item]
        return root

    def join(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)


def components(rows: Sequence[Row]) -> list[list[Row]]:
    """Rows grouped by person (linked through shared identity keys), each group in
    input order, groups ordered by their first row."""
    found = _Components(len(rows))
    first_with_key: dict[str, int] = {}
    for position, row in enumerate(rows):
        for key in row.identity:
            other = first_with_key.setdefault(key, position)
            if other != position:
                found.join(other, position)
    groups: dict[int, list[Row]] = {}
    for position, row in enumerate(rows):
        groups.setdefault(found.find(position), []).append(row)
    return [groups[root] for root in sorted(groups)]


def shard(rows: Iterable[Row], shards: int) -> list[list[Row]]:
    """At most ``shards`` shards of whole components, balanced by row count (each
    component goes to the lightest shard so far), every shard in input order."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    ordered = sorted(rows, key=lambda row: row.index)
    buckets: list[list[Row]] = [[] for _ in range(shards)]
    loads = [(0, number) for number in range(shards)]
    # Largest components first: greedy balancing is then within one component's size.
    for group in sorted(components(ordered), key=len, reverse=True):
        load, number = heapq.heappop(loads)
        buckets[number].extend(group)
        heapq.heappush(loads, (load + len(group), number))
    return [sorted(bucket, key=lambda row: row.index) for bucket in buckets if bucket]


def chunks(rows: Sequence[Row], size: int) -> list[list[Row]]:
    """``rows`` cut in order into chunks of at most ``size``."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [list(rows[start : start + size]) for start in range(0, len(rows), size)]
