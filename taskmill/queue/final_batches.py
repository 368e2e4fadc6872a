"""Final outcomes written in batches: one UPDATE per batch of tasks nobody waits for, for
dialects that can fence and report every row of it (Queue.finish_many's fast path).

Queue inherits it; a dialect with such a statement overrides _finish_sql (and _finish_params).
"""

from __future__ import annotations

import json
from abc import ABC
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connections

from ..codec import to_json_text
from ..models import TaskRecord
from .finishing import FinalRow


class FinalBatches(ABC):
    """Write final outcomes many rows per statement, where the dialect can."""

    database_alias: str

    @property
    def finishes_in_batches(self) -> bool:
        """Whether finish_many() writes final outcomes in one statement per batch."""
        return self._finish_sql(1) is not None

    def _finish_sql(self, rows: int) -> str | None:
        """An UPDATE writing `rows` final outcomes, fenced as finish() is, taking per row the
        parameters _finish_final_batch() binds and RETURNING the ids written (or telling them
        otherwise, see _write_final_batch); None if the dialect can't (one statement per task
        then)."""
        return None

    def _finish_final_batch(self, rows: Sequence[FinalRow]) -> set[UUID]:
        """Write final outcomes of tasks without dependants in one statement; return the ids
        written (none where the dialect has no such statement)."""
        sql = self._finish_sql(len(rows))
        if sql is None:
            return set()
        connection = connections[self.database_alias]
        id_field = TaskRecord._meta.get_field("id")
        time_field = TaskRecord._meta.get_field("finished_at")
        # A batch's rows share their finish time, and their expiry when their result_ttl is
        # the same: each distinct time is prepared once.
        times: dict[datetime, Any] = {}

        def prepared_time(value: datetime) -> Any:
            if value not in times:
                times[value] = time_field.get_db_prep_value(value, connection)
            return times[value]

        values: list[list[Any]] = []
        for row in rows:
            changes = row.changes
            value = changes["return_value"]
            values.append(
                [
                    id_field.get_db_prep_value(row.lease.task_id, connection),
                    row.lease.worker_id,
                    row.lease.attempt,
                    str(changes["state"]),
                    json.dumps(changes["errors"]),
                    # JSONField stores None as SQL NULL, as Django's own save would.
                    None if value is None else to_json_text(value),
                    prepared_time(changes["finished_at"]),
                    prepared_time(changes["expires_at"]),
                ]
            )
        return self._write_final_batch(sql, self._finish_params(values), rows)

    def _write_final_batch(
        self, sql: str, params: list[Any], rows: Sequence[FinalRow]
    ) -> set[UUID]:
        """Run the batch's UPDATE; return the ids it wrote (dialects without RETURNING
        override it)."""
        with connections[self.database_alias].cursor() as cursor:
            cursor.execute(sql, params)
            # A uuid on PostgreSQL, its hex text on SQLite.
            return {UUID(str(task_id)) for (task_id,) in cursor.fetchall()}

    def _finish_params(self, rows: list[list[Any]]) -> list[Any]:
        """The parameters of _finish_sql() for these rows' values: row after row, unless the
        dialect binds them otherwise."""
        return [value for row in rows for value in row]
