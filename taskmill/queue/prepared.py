"""PreparedInsert: the one-statement INSERT of ready tasks of one task, with the parameters all
its calls share prepared once, so each enqueue() prepares only its id, time and arguments."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, JSONField

from ..models import TaskRecord

# The columns a call fills in; every other one is the same for every call of one task.
PER_CALL_COLUMNS: Final = ("id", "args", "kwargs", "enqueued_at", "run_after")


class VerbatimJSON(json.JSONEncoder):
    """Encode JSON text as itself: a database's own adapt_json_value() then binds arguments
    encoded once (for the size limit) without encoding them again."""

    def encode(self, o: Any) -> str:
        if not isinstance(o, str):
            raise TypeError(f"VerbatimJSON takes JSON text, not {type(o).__name__}.")
        return o


class PreparedInsert:
    """Insert rows equal to `template` but for PER_CALL_COLUMNS; run_after is the enqueue
    time unless the template's task gives its own."""

    def __init__(
        self,
        *,
        database_alias: str,
        sql: str,
        wake_fields: Sequence[str] = (),
        fields: Sequence[Field[Any, Any]],
        template: TaskRecord,
        own_run_after: bool,
    ) -> None:
        self.database_alias = database_alias
        self.sql = sql
        self.own_run_after = own_run_after
        connection = connections[database_alias]
        names = [field.attname for field in fields]
        self.params = [
            _prepare(field, getattr(template, name), connection)
            for field, name in zip(fields, names, strict=True)
        ]
        # A wake-up's parameters follow the row's; they are the task's, the same every call.
        self.params += [self.params[names.index(name)] for name in wake_fields]
        self.id_field = fields[names.index("id")]
        self.id_index, self.args_index, self.kwargs_index, self.time_index, self.run_after_index = (
            names.index(name) for name in PER_CALL_COLUMNS
        )
        # SQLite and MySQL bind a JSON value as its text (PostgreSQL wraps it to type it
        # jsonb): there, the arguments' text is their parameter, with nothing to call per row.
        probe = "[]"
        self.json_is_text = connection.ops.adapt_json_value(probe, VerbatimJSON) is probe

    def execute(self, *, task_id: UUID, args_text: str, kwargs_text: str, now: datetime) -> None:
        """Insert one row with this id, these arguments (JSON text, as the args and kwargs
        columns' encoder writes it) and this enqueue time (from timezone.now())."""
        connection = connections[self.database_alias]
        params = self.params.copy()
        params[self.id_index] = self.id_field.get_db_prep_save(task_id, connection)
        if self.json_is_text:
            params[self.args_index] = args_text
            params[self.kwargs_index] = kwargs_text
        else:
            adapt_json = connection.ops.adapt_json_value
            params[self.args_index] = adapt_json(args_text, VerbatimJSON)
            params[self.kwargs_index] = adapt_json(kwargs_text, VerbatimJSON)
        # What DateTimeField.get_db_prep_save() comes to for timezone.now(): aware with
        # USE_TZ, naive without, so its naive-time warning and conversion never apply.
        stamp = connection.ops.adapt_datetimefield_value(now)
        params[self.time_index] = stamp
        if not self.own_run_after:
            params[self.run_after_index] = stamp
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)


def _prepare(field: Field[Any, Any], value: Any, connection: BaseDatabaseWrapper) -> Any:
    """Prepare a value as Queue._prepare_value() does, so the rows are the same; JSON is
    encoded here, once, rather than by the driver on every execute (PostgreSQL's Jsonb)."""
    if isinstance(field, JSONField) and value is not None:
        text = json.dumps(field.get_prep_value(value), cls=field.encoder)
        return connection.ops.adapt_json_value(text, VerbatimJSON)
    return field.get_db_prep_save(value, connection)
