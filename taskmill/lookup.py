"""Finding a task's row by its result id, in whichever queue database holds it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.tasks import TaskResult
from django.tasks.exceptions import TaskResultDoesNotExist

from .ids import parse_task_id
from .models import TaskRecord
from .routers import queue_databases


def find_record(result: str | TaskResult[..., Any], *, only: Sequence[str] = ()) -> TaskRecord:
    """Return the row of a result id or TaskResult; `only` limits the columns read.

    The row's database is `record._state.db`. Raise TaskResultDoesNotExist for an unknown id.
    """
    result_id = result.id if isinstance(result, TaskResult) else result
    task_id = parse_task_id(result_id)
    if task_id is not None:
        for database in queue_databases():
            rows = TaskRecord.objects.using(database).filter(id=task_id)
            record = (rows.only(*only) if only else rows).first()
            if record is not None:
                return record
    raise TaskResultDoesNotExist(result_id)
