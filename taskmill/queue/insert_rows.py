"""Rows of a bulk insert as statement parameters, each distinct value prepared once.

Records of one enqueue_many() are clones of one record: they share every value but their id,
arguments and unique key, and preparing a value (JSON text, a database's datetime form) costs
more than inserting it. Work goes column by column, so a column whose rows all hold the same
object is prepared once and repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from django.db.models import Field

from ..models import TaskRecord

type Prepare = Callable[[Field[Any, Any], Any], Any]

# Values whose prepared form depends on their value alone: equal ones prepare the same.
_SCALARS: Final = frozenset({str, int, float, bool, type(None), datetime, UUID})
_UNSET: Final = object()
# The columns in which the rows of Copies differ; every other value is the template's.
COPY_COLUMNS: Final = ("id", "args", "kwargs")


def _same_value(value: object, previous: object) -> bool:
    """Whether value prepares as previous did: the same object, an equal scalar of the same
    type (1 == True, but they are different JSON), or both the same empty container."""
    if value is previous:
        return True
    kind = type(value)
    if kind is not type(previous):
        return False
    if kind in _SCALARS:
        return value == previous
    return kind in (list, dict) and not value and not previous


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedColumns:
    """A bulk insert's prepared values by column (indexes in `fields` order): the value every
    row shares, or one value per row."""

    count: int
    shared: dict[int, Any]
    varying: dict[int, list[Any]]

    def rows(self) -> list[tuple[Any, ...]]:
        """One tuple of values per row, every column in order."""
        width = len(self.shared) + len(self.varying)
        columns = [
            self.varying[index] if index in self.varying else [self.shared[index]] * self.count
            for index in range(width)
        ]
        return list(zip(*columns, strict=True))

    def varying_rows(self) -> list[tuple[Any, ...]]:
        """One tuple per row of its varying columns' values, in column order."""
        return list(zip(*(self.varying[index] for index in sorted(self.varying)), strict=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class Copies:
    """Rows equal to `template` but for their id and arguments (COPY_COLUMNS): what one
    enqueue_many() of a task without unique key or dependencies writes."""

    template: TaskRecord
    ids: Sequence[str]  # 32 hex digits each, as ids.new_task_hexes() makes them
    args_texts: Sequence[str]  # JSON text, as the columns' encoder writes it (to_json_text)
    kwargs_texts: Sequence[str]

    @property
    def count(self) -> int:
        return len(self.ids)


def prepared_columns(
    records: Sequence[TaskRecord], fields: Sequence[Field[Any, Any]], prepare: Prepare
) -> PreparedColumns:
    """Prepare the records' values column by column; a column whose rows all hold the same
    value (the same object, or equal empty containers) is prepared once and marked shared."""
    shared: dict[int, Any] = {}
    varying: dict[int, list[Any]] = {}
    for index, field in enumerate(fields):
        values = [record.__dict__[field.attname] for record in records]
        # Identity, not equality: 1 == True == 1.0 would make different JSON the same.
        # (Every value is alive in `values`, so no two of them can share an id().)
        if values and (len(set(map(id, values))) == 1 or _all_empty_containers(values)):
            shared[index] = prepare(field, values[0])
        else:
            varying[index] = _prepared_column(values, field, prepare)
    return PreparedColumns(count=len(records), shared=shared, varying=varying)


def prepared_rows(
    records: Sequence[TaskRecord], fields: Sequence[Field[Any, Any]], prepare: Prepare
) -> list[tuple[Any, ...]]:
    """Return one tuple of prepared values per record, in `fields` order."""
    return prepared_columns(records, fields, prepare).rows()


def _prepared_column(values: list[Any], field: Field[Any, Any], prepare: Prepare) -> list[Any]:
    column = []
    raw: object = _UNSET
    prepared: Any = None
    for value in values:
        if not _same_value(value, raw):
            raw, prepared = value, prepare(field, value)
        column.append(prepared)
    return column


def _all_empty_containers(values: list[Any]) -> bool:
    # Each record gets fresh empty lists for what its life changes (worker ids, errors):
    # equal, and prepared alike, though never the same object.
    kinds = set(map(type, values))
    return len(kinds) == 1 and kinds <= {list, dict} and not any(values)
