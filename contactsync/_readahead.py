"""Reading the input ahead, in a run with a state store: which rows are not their
person's last, so that only the last one is written.

A person's earlier rows are ``skipped`` (``superseded``): sending them first would put
older data on the platform for a while, make every repeat run send them again (the store
confirms only the last one), and leave them as failures worth retrying.

"Last" is by order: a row read back from a ``--failed`` file keeps the order of the run
that wrote the file (run sequence, input position, see :data:`ANNOTATION_KEY`); every
other row is this run's, later than any earlier run's, in input order.

The first pass keeps nothing of a row but a hash of its person's key and its order (in a
dict, or past :data:`IN_MEMORY` people in a temporary SQLite file: memory stays bounded
for millions of rows); what it leaves is one bit per row.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ._errors import ContactError
from ._incremental import raw_key
from ._model import Contact
from ._provider import Prepared, Provider
from ._records import ANNOTATION_KEY, InputLine, contact_from_record, read_input
from ._state._coarse import coarse_key

CURRENT_RUN = 1 << 62
"""The run part of the order of this run's own rows: after every recorded run's."""
_ROWS_PER_INSERT = 10_000


class InputFile:
    """An input file that can be read more than once (each iteration opens it again):
    what lets a run with a state store read it ahead. ``kind``: ``csv``, ``json`` or
    ``jsonl`` (see :func:`read_input`); ``limits`` the readers' (the config's
    ``[input]``, see :meth:`InputConfig.limits <contactsync._config.InputConfig.limits>`)."""

    def __init__(
        self, path: str | Path, kind: str, limits: Mapping[str, int] | None = None
    ) -> None:
        self.path = Path(path)
        self.kind = kind
        self.limits = dict(limits or {})

    def __iter__(self) -> Iterator[InputLine]:
        with self.path.open("rb") as stream:
            yield from read_input(stream, self.kind, **self.limits)

    def __repr__(self) -> str:
        return f"InputFile({str(self.path)!r}, {self.kind!r})"


def rereadable(inputs: object) -> bool:
    """Whether ``inputs`` can be read twice (a file named for it, a list or tuple)."""
    return isinstance(inputs, InputFile | list | tuple)


def person_key(provider: Provider[Any], raw: object) -> str | None:
    """The person of an input row as a run finds it, without mapping it: the coarse
    form (:func:`coarse_key`) of its state key (the raw external id, else the
    provider's key of the contact); ``None`` for a row that cannot be read (it is
    rejected, and supersedes nothing). Coarse, not exact: two rows the platform may land
    on one record (``Ann@`` and ``ann@``) are one person here, so the older is
    ``skipped`` (``superseded``) rather than written over the newer one's record."""
    key = _state_key(provider, raw)
    return None if key is None else coarse_key(key)


def _state_key(provider: Provider[Any], raw: object) -> str | None:
    if type(raw) is InputLine:
        if raw.error is not None:
            return None
        raw = raw.record
    key = raw_key(raw)
    if key is not None:
        return key
    try:
        contact = raw if isinstance(raw, Contact) else contact_from_record(raw)
        contact = contact.with_phone_region(provider.tenant.default_phone_region)
        return provider.state_key(Prepared(0, contact, None))
    except (ContactError, ValueError, TypeError):
        return None


def last_rows_only(provider: Provider[Any], inputs: object) -> Superseded | None:
    """With a state store: the rows of ``inputs`` not to be written (see the module),
    when it can be read twice; ``None`` otherwise. Under ``create_only`` a person's
    first row creates them and the rest are skipped: no row is written over another."""
    if not rereadable(inputs) or provider.tenant.sync_mode == "create_only":
        return None
    return find_superseded(inputs, lambda raw: person_key(provider, raw))  # type: ignore[arg-type]


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


class Superseded:
    """One bit per input position: set for a row that is not its person's last."""

    def __init__(self) -> None:
        self._bits = bytearray()
        self.count = 0

    def add(self, position: int) -> None:
        byte = position >> 3
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte + 1 - len(self._bits) + (len(self._bits) >> 1)))
        self._bits[byte] |= 1 << (position & 7)
        self.count += 1

    def __contains__(self, position: object) -> bool:
        if type(position) is not int:
            return False
        byte = position >> 3
        return byte < len(self._bits) and bool(self._bits[byte] & (1 << (position & 7)))


IN_MEMORY = 100_000
"""People kept in a dict by the first pass; past that, in a temporary SQLite file."""


def find_superseded(
    inputs: Iterable[Any], key_of: Callable[[object], str | None], in_memory: int = IN_MEMORY
) -> Superseded | None:
    """The first pass over ``inputs``: the positions of rows that are not their
    person's last (``key_of`` names the person of a row, or ``None``); ``None`` when
    every person has one row.

    Up to ``in_memory`` people, each person's best row so far is kept in a dict (a
    row that loses is marked at once); past that, every row goes to a temporary SQLite
    file and one query finds the losers: memory stays bounded for any input."""
    superseded = Superseded()
    best: dict[int, tuple[int, int, int]] = {}
    spill: _Spill | None = None
    try:
        for position, item in enumerate(inputs):
            key = key_of(item)
            if key is None:
                continue
            record = item.record if type(item) is InputLine else item
            order = annotated_order(record)
            # Python's string hash: random per process, fixed within this pass.
            row = (*(order or (CURRENT_RUN, position)), position)
            person = hash(key)
            if spill is not None:
                spill.add((person, *row))
                continue
            before = best.get(person)
            if before is None:
                best[person] = row
                if len(best) > in_memory:
                    spill = _Spill()
                    for known, kept in best.items():
                        spill.add((known, *kept))
                    best.clear()
            elif row > before:  # ties go to the later position: input order decides
                best[person] = row
                superseded.add(before[2])
            else:
                superseded.add(position)
        if spill is not None:
            for position in spill.losers():
                superseded.add(position)
    finally:
        if spill is not None:
            spill.close()
    return superseded if superseded.count else None


class _Spill:
    """The first pass past :data:`IN_MEMORY` people: rows in a temporary SQLite file."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="contactsync-ahead-")
        self._db = sqlite3.connect(str(Path(self._folder.name) / "ahead.db"))
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE rows (k INTEGER, r INTEGER, i INTEGER, p INTEGER)")
        self._rows: list[tuple[int, int, int, int]] = []

    def add(self, row: tuple[int, int, int, int]) -> None:
        self._rows.append(row)
        if len(self._rows) >= _ROWS_PER_INSERT:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", self._rows)
        self._rows = []

    def losers(self) -> Iterator[int]:
        self._flush()
        cursor = self._db.execute(
            "SELECT p FROM (SELECT p, row_number() OVER "
            "(PARTITION BY k ORDER BY r DESC, i DESC, p DESC) AS n FROM rows) WHERE n > 1"
        )
        while batch := cursor.fetchmany(_ROWS_PER_INSERT):
            for (position,) in batch:
                yield position

    def close(self) -> None:
        self._db.close()
        self._folder.cleanup()
