"""Operator actions (cancel, history, enqueue_many): the one path used by the Python API, the
command line and the admin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db.models import Model
from django.tasks import Task, TaskResult
from django.tasks.exceptions import TaskResultDoesNotExist

from .backend import Call, DatabaseBackend
from .ids import parse_task_id
from .models import TaskRecord, TaskRecordQuerySet
from .queue import get_queue
from .routers import queue_databases


def enqueue_many(task: Task[..., Any], calls: Iterable[Call]) -> list[TaskResult[..., Any]]:
    """Enqueue task once per (args, kwargs) pair, in batches of one INSERT each."""
    checked = [_check_call(index, call) for index, call in enumerate(calls)]
    backend = task.get_backend()
    if isinstance(backend, DatabaseBackend):
        return backend.enqueue_many(task, checked)
    return [backend.enqueue(task, list(args), dict(kwargs)) for args, kwargs in checked]


def _check_call(index: int, call: object) -> Call:
    if (
        isinstance(call, tuple | list)
        and len(call) == 2
        and isinstance(call[0], Sequence)
        and not isinstance(call[0], str)
        and isinstance(call[1], Mapping)
    ):
        return call[0], call[1]
    raise TypeError(
        f"calls[{index}] must be an (args, kwargs) pair such as ((1, 2), {{'x': 3}}), not {call!r}."
    )


def history(instance: Model) -> TaskRecordQuerySet:
    """Return the tasks enqueued with for_object=instance, newest first."""
    return (
        TaskRecord.objects.using(queue_databases()[0])
        .for_object(instance)
        .order_by("-enqueued_at", "-id")
    )


def cancel(result: str | TaskResult[..., Any]) -> bool:
    """Cancel a queued task at once, or ask its worker to kill a running one.

    Take a result id or a TaskResult. Return False when the task had already finished.
    Raise TaskResultDoesNotExist for an unknown id.
    """
    result_id = result.id if isinstance(result, TaskResult) else result
    task_id = parse_task_id(result_id)
    if task_id is not None:
        for database in queue_databases():
            outcome = get_queue(database).cancel(task_id)
            if outcome is not None:
                return outcome
    raise TaskResultDoesNotExist(result_id)
