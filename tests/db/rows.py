"""Rows written by hand as the worker would write them: log chunks, progress, a final state.

The read side (taskmill.output, the CLI, the admin) is tested against these.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.tasks import TaskResult
from django.utils import timezone

from taskmill.models import LogChunk, TaskRecord
from taskmill.states import FINISHED_STATES, State

type ResultOrId = TaskResult[..., Any] | str


def _id(result: ResultOrId) -> UUID:
    return UUID(result.id if isinstance(result, TaskResult) else result)


def write_chunk(
    result: ResultOrId, text: str, *, stream: str = "stdout", attempt: int = 1
) -> LogChunk:
    """Store a LogChunk numbered after the last one of its attempt."""
    task_id = _id(result)
    seq = LogChunk.objects.filter(task_id=task_id, attempt=attempt).count()
    return LogChunk.objects.create(
        task_id=task_id,
        attempt=attempt,
        seq=seq,
        stream=stream,
        text=text,
        created_at=timezone.now(),
    )


def store_progress(result: ResultOrId, done: float, total: float | None, message: str = "") -> None:
    """Store progress on a task's row."""
    stored = {
        "done": done,
        "total": total,
        "message": message,
        "updated_at": timezone.now().isoformat(),
    }
    assert TaskRecord.objects.filter(id=_id(result)).update(progress=stored) == 1


def set_state(result: ResultOrId, state: State, **fields: object) -> None:
    """Put a task's row in a state (a final one with its finished_at)."""
    if state in FINISHED_STATES:
        fields.setdefault("finished_at", timezone.now())
    if state == State.RUNNING:
        fields.setdefault("started_at", timezone.now())
    assert TaskRecord.objects.filter(id=_id(result)).update(state=state, **fields) == 1
