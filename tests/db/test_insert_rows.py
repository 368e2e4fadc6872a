"""queue/insert_rows.py: the parameters of a bulk insert, each distinct value prepared once."""

from __future__ import annotations

from typing import Any

from django.db.models import Field

from taskmill.models import TaskRecord
from taskmill.queue.insert_rows import prepared_rows

FIELDS: list[Field[Any, Any]] = [
    field
    for field in TaskRecord._meta.concrete_fields
    if field.name in ("priority", "args", "worker_ids")
]


def _record(**values: Any) -> TaskRecord:
    return TaskRecord(**values)


class CountingPrepare:
    """Prepares a value as its repr, counting the calls per field."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def __call__(self, field: Field[Any, Any], value: Any) -> str:
        self.calls[field.name] = self.calls.get(field.name, 0) + 1
        return repr(value)


def test_prepared_rows__a_value_shared_by_every_row_is_prepared_once() -> None:
    shared_args = [1, 2]
    records = [_record(priority=3, args=shared_args, worker_ids=[]) for _ in range(50)]
    prepare = CountingPrepare()

    rows = prepared_rows(records, FIELDS, prepare)

    assert rows == [("3", "[1, 2]", "[]")] * 50
    # Fresh empty lists in every row are prepared once too: they prepare alike.
    assert prepare.calls == {"priority": 1, "args": 1, "worker_ids": 1}


def test_prepared_rows__equal_values_of_different_types_are_prepared_apart() -> None:
    # 1 == True == 1.0 in Python, but they are different JSON.
    values = [[1], [True], [1.0], [1], [1]]
    records = [_record(priority=0, args=args, worker_ids=[]) for args in values]
    prepare = CountingPrepare()

    rows = prepared_rows(records, FIELDS, prepare)

    assert [row[1] for row in rows] == ["[1]", "[True]", "[1.0]", "[1]", "[1]"]


def test_prepared_rows__rows_keep_the_order_of_the_records() -> None:
    records = [_record(priority=n, args=[n], worker_ids=["w"] * n) for n in range(4)]

    rows = prepared_rows(records, FIELDS, CountingPrepare())

    assert rows == [(str(n), repr([n]), repr(["w"] * n)) for n in range(4)]


def test_prepared_rows__no_records_no_rows() -> None:
    assert prepared_rows([], FIELDS, CountingPrepare()) == []
