"""The read-ahead's first pass: which rows are not their person's last."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from contactsync._readahead import InputFile, annotated_order, find_superseded, rereadable
from contactsync._records import ANNOTATION_KEY, InputLine


def _key(item: object) -> str | None:
    record = item.record if isinstance(item, InputLine) else item
    assert isinstance(record, dict)
    value = record.get("id")
    return None if value is None else f"id={value}"


def _positions(rows: list[dict[str, Any]]) -> list[int]:
    found = find_superseded(rows, _key)
    return [] if found is None else [p for p in range(len(rows)) if p in found]


def test_every_row_but_each_persons_last_is_superseded() -> None:
    rows = [{"id": "a"}, {"id": "b"}, {"id": "a"}, {}, {"id": "c"}, {"id": "a"}, {}]
    assert _positions(rows) == [0, 2]


def test_one_row_per_person_supersedes_nothing() -> None:
    assert find_superseded([{"id": n} for n in range(50)], _key) is None
    assert find_superseded([], _key) is None


def test_a_replayed_row_keeps_its_order() -> None:
    def failed(person: str, run: int, index: int) -> dict[str, Any]:
        return {"id": person, ANNOTATION_KEY: {"index": index, "order": [run, index]}}

    # A --failed file holds lines in the order outcomes came, not input order; lines of
    # several runs may be put together. The greatest order wins, then a row of this run.
    rows = [failed("a", 7, 9), failed("a", 7, 3), failed("b", 6, 1), failed("b", 8, 0)]
    rows += [failed("c", 5, 5), {"id": "c"}]
    assert _positions(rows) == [1, 2, 4]


def test_a_row_given_twice_keeps_the_later_position() -> None:
    line = {"id": "a", ANNOTATION_KEY: {"order": [3, 4]}}
    assert _positions([line, dict(line)]) == [0]


def test_a_malformed_order_is_no_order() -> None:
    for note in ({"order": [1]}, {"order": ["1", 2]}, {"order": [-1, 2]}, {"order": [True, 2]}):
        assert annotated_order({"id": "a", ANNOTATION_KEY: note}) is None
    assert annotated_order({"id": "a"}) is None
    assert annotated_order("not a record") is None
    assert annotated_order({ANNOTATION_KEY: {"order": [2, 3]}}) == (2, 3)


def test_a_file_is_read_again_on_each_pass(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": n % 3}) + "\n" for n in range(7)))
    source = InputFile(path, "jsonl")
    assert rereadable(source)
    assert rereadable([1])
    assert not rereadable(iter([1]))
    assert [line.index for line in source] == list(range(7))
    found = find_superseded(source, _key)
    assert found is not None
    assert [p for p in range(7) if p in found] == [0, 1, 2, 3]
    assert [line.record for line in source][-1] == {"id": 0}


def test_past_the_in_memory_limit_the_answer_is_the_same() -> None:
    rng = random.Random(4)
    rows: list[dict[str, Any]] = []
    for n in range(400):
        row: dict[str, Any] = {"id": rng.randrange(60)}
        if n % 7 == 0:
            row[ANNOTATION_KEY] = {"order": [rng.randrange(3), rng.randrange(400)]}
        if n % 11 == 0:
            del row["id"]
        rows.append(row)
    in_memory = find_superseded(rows, _key)
    spilled = find_superseded(rows, _key, in_memory=5)
    assert in_memory is not None
    assert spilled is not None
    assert [p for p in range(400) if p in spilled] == [p for p in range(400) if p in in_memory]
    assert (
        spilled.count
        == in_memory.count
        == 400 - len({r["id"] for r in rows if "id" in r}) - (sum("id" not in r for r in rows))
    )
