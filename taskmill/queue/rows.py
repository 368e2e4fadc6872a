"""Rows a claim returns, read into TaskRecords with the converters Django applies, worked out
once per column list, and records built without Model.__init__ (models.build_record).

A draining worker reads back every row it claims, thousands a second; through raw() the
ORM works out its converters on every query and builds each record through __init__, which
cost more than the claim's statement itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final
from weakref import WeakKeyDictionary

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, JSONField

from ..codec import TolerantJSONDecoder
from ..models import TaskRecord, build_record, record_columns

type Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]
# Per column of a result: its position, the record's attribute, and what turns the driver's
# value into the attribute's.
type ColumnPlan = tuple[int, str, Callable[[Any], Any] | None]

# One decoder for every JSON column: json.loads(value, cls=...) builds a new one per value.
_DECODER: Final = TolerantJSONDecoder()


class RowReader:
    """Reads TaskRecords from a cursor over whole task rows."""

    def __init__(self) -> None:
        # Converters are bound to a connection's operations, and each thread has its own
        # connection object: plans are kept per connection, for as long as it exists.
        self._plans: WeakKeyDictionary[
            BaseDatabaseWrapper, dict[tuple[str, ...], list[ColumnPlan]]
        ] = WeakKeyDictionary()

    def records(self, cursor: CursorWrapper, database: str) -> list[TaskRecord]:
        """Return the cursor's remaining rows as TaskRecords read from `database`.

        A column the model doesn't know (one a newer migration added, while this worker still
        runs the older code) is left out; a column the table lacks is left deferred, as the
        ORM leaves it, and built through Model.from_db().
        """
        connection = cursor.db
        columns = tuple(str(column[0]) for column in cursor.description or ())
        plans = self._plans.setdefault(connection, {})
        plan = plans.get(columns)
        if plan is None:
            plan = plans[columns] = _plan(connection, columns)
        whole = {name for _, name, _ in plan} == record_columns()
        records = []
        for row in cursor.fetchall():
            values = {}
            for index, name, convert in plan:
                value = row[index]
                values[name] = value if convert is None or value is None else convert(value)
            records.append(
                build_record(values, database=database)
                if whole
                else TaskRecord.from_db(database, list(values), list(values.values()))
            )
        return records


def _plan(connection: BaseDatabaseWrapper, columns: Sequence[str]) -> list[ColumnPlan]:
    """For each column of the model in the result: its position, attribute and converter."""
    by_column = {str(field.column): field for field in TaskRecord._meta.concrete_fields}
    return [
        (index, by_column[column].attname, _converter(connection, by_column[column]))
        for index, column in enumerate(columns)
        if column in by_column
    ]


def _converter(
    connection: BaseDatabaseWrapper, field: Field[Any, Any]
) -> Callable[[Any], Any] | None:
    """What Django's compiler applies to this column's values, as one function; None when
    the driver's value is the attribute's (None always is: every converter keeps it)."""
    expression = field.get_col(str(TaskRecord._meta.db_table))
    converters: list[Converter] = [
        *connection.ops.get_db_converters(expression),
        *field.get_db_converters(connection),
    ]
    if isinstance(field, JSONField) and field.decoder is TolerantJSONDecoder:
        converters = [
            _fast_json(converter) if _is_from_db_value(converter, field) else converter
            for converter in converters
        ]
    if not converters:
        return None
    if len(converters) == 1:
        [only] = converters
        return lambda value: only(value, expression, connection)

    def convert(value: Any) -> Any:
        for converter in converters:
            value = converter(value, expression, connection)
        return value

    return convert


def _is_from_db_value(converter: Converter, field: Field[Any, Any]) -> bool:
    return getattr(converter, "__func__", None) is JSONField.from_db_value and (
        getattr(converter, "__self__", None) is field
    )


def _fast_json(from_db_value: Converter) -> Converter:
    """JSONField.from_db_value with one shared decoder for text; anything else (bytes, a
    byte-order mark that json.loads refuses) takes Django's own path."""

    def convert(value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Any:
        if isinstance(value, str) and not value.startswith("\ufeff"):
            return _DECODER.decode(value)
        return from_db_value(value, expression, connection)

    return convert
