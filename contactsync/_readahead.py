"""Reading the input ahead, in a run with a state store: which rows are not their
person's last, so that only the last one is written.

A person's earlier rows are ``skipped`` (``superseded``): sending them first would put
older data on the platform for a while, make every repeat run send them again (the store
confirms only the last one), and leave them as failures worth retrying.

"Last" is by order: a row read back from a ``--failed`` file keeps the order of the run
that wrote the file (run sequence, input position, see :data:`ANNOTATION_KEY`); every
other row is this run's, later than any earlier run's, in input order.

The first pass keeps nothing of a row but a 64-bit hash of its person's key and its order,
in a temporary SQLite file (memory stays bounded for millions of rows); what it leaves
is one bit per row.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ._records import ANNOTATION_KEY, InputLine, read_input

CURRENT_RUN = 1 << 62
"""The run part of the order of this run's own rows: after every recorded run's."""
_ROWS_PER_INSERT = 10_000


class InputFile:
    """An input file that can be read more than once (each iteration opens it again):
    what lets a run with a state store read it ahead. ``kind``: ``csv``, ``json`` or
    ``jsonl`` (see :func:`read_input`)."""

    def __init__(self, path: str | Path, kind: str) -> None:
        self.path = Path(path)
        self.kind = kind

    def __iter__(self) -> Iterator[InputLine]:
        with self.path.open("rb") as stream:
            yield from read_input(stream, self.kind)

    def __repr__(self) -> str:
        return f"InputFile({str(self.path)!r}, {self.kind!r})"


def rereadable(inputs: object) -> bool:
    """Whether ``inputs`` can be read twice (a file named for it, a list or tuple)."""
    return isinstance(inputs, InputFile | list | tuple)


def annotated_order(record: object) -> tuple[int, int] | None:
    """The order a ``--failed`` line carries (``[run sequence, input position]``)."""
    if type(record) is not dict and not isinstance(record, Mapping):
        return None
    note = record.get(ANNOTATION_KEY)
    if not isinstance(note, Mapping):
        return None
    order = note.get("order")
    if (
        isinstance(order, list | tuple)
        and len(order) == 2
        and all(type(part) is int and 0 <= part < CURRENT_RUN for part in order)
    ):
        return (order[0], order[1])
    return None


def _hash(key: str) -> int:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Superseded:
    """One bit per input position: set for a row that is not its person's last."""

    def __init__(self, size: int) -> None:
        self._bits = bytearray((size + 7) // 8)
        self.count = 0

    def add(self, position: int) -> None:
        self._bits[position >> 3] |= 1 << (position & 7)
        self.count += 1

    def __contains__(self, position: int) -> bool:
        byte = position >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (position & 7)))


def find_superseded(
    inputs: Iterable[Any], key_of: Callable[[object], str | None]
) -> Superseded | None:
    """The first pass over ``inputs``: the positions of rows that are not their
    person's last (``key_of`` names the person of a row, or ``None``); ``None`` when
    every person has one row."""
    with tempfile.TemporaryDirectory(prefix="contactsync-ahead-") as folder:
        db = sqlite3.connect(str(Path(folder) / "ahead.db"))
        with contextlib.closing(db):
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("CREATE TABLE rows (k INTEGER, r INTEGER, i INTEGER, p INTEGER)")
            size = 0
            rows: list[tuple[int, int, int, int]] = []
            for position, item in enumerate(inputs):
                size = position + 1
                key = key_of(item)
                if key is None:
                    continue
                record = item.record if type(item) is InputLine else item
                order = annotated_order(record) or (CURRENT_RUN, position)
                rows.append((_hash(key), order[0], order[1], position))
                if len(rows) >= _ROWS_PER_INSERT:
                    db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", rows)
                    rows = []
            db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", rows)
            # Ties (the same line twice) go to the later position: input order decides.
            earlier = db.execute(
                "SELECT p FROM (SELECT p, row_number() OVER "
                "(PARTITION BY k ORDER BY r DESC, i DESC, p DESC) AS n FROM rows) WHERE n > 1"
            )
            superseded = Superseded(size)
            while batch := earlier.fetchmany(_ROWS_PER_INSERT):
                for (position,) in batch:
                    superseded.add(position)
    return superseded if superseded.count else None
