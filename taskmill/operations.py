"""Operator actions (cancel, retry, history, enqueue_many): the one path used by the Python API,
the command line and the admin."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from django.db.models import Model
from django.tasks import Task, TaskResult
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone

from .backend import Call, DatabaseBackend
from .enqueueing import unique_key
from .exceptions import NotRetryable
from .ids import parse_task_id
from .models import TaskRecord, TaskRecordQuerySet
from .queue import get_queue
from .results import task_for_record, to_task_result
from .routers import queue_databases
from .states import State

RETRYABLE_STATES: Final = frozenset({State.FAILED, State.CANCELLED})


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


def retry_task(result: str | TaskResult[..., Any]) -> TaskResult[..., Any]:
    """Enqueue a failed or cancelled task again, as a new result whose retry_of is the old one.

    The new task has the old one's arguments and options and no dependencies; the old result
    is left as it is. Raise TaskResultDoesNotExist for an unknown id, NotRetryable for a task
    that is not failed or cancelled, TaskNotRegistered if its task no longer exists.
    """
    result_id = result.id if isinstance(result, TaskResult) else result
    task_id = parse_task_id(result_id)
    if task_id is not None:
        for database in queue_databases():
            record = TaskRecord.objects.using(database).filter(id=task_id).first()
            if record is not None:
                return _enqueue_again(record, database)
    raise TaskResultDoesNotExist(result_id)


def _enqueue_again(record: TaskRecord, database: str) -> TaskResult[..., Any]:
    if record.state not in RETRYABLE_STATES:
        raise NotRetryable(
            f"Task {record.id} is {record.state}; only failed or cancelled tasks can be retried "
            "(cancel it first, or wait for it to finish)."
        )
    task = task_for_record(record)  # raises TaskNotRegistered if the task is gone
    now = timezone.now()
    again = TaskRecord(
        backend=record.backend,
        task_path=record.task_path,
        queue_name=record.queue_name,
        priority=record.priority,
        state=State.READY,
        args=record.args,
        kwargs=record.kwargs,
        options=record.options,
        enqueued_at=now,
        run_after=now,
        content_type_id=record.content_type_id,
        object_id=record.object_id,
        unique_key=unique_key(task, record.args, record.kwargs),
        retry_of=record,
    )
    stored = get_queue(database).insert([again])[0]
    new_result = to_task_result(stored, task=task if stored is again else None)
    if stored is again:
        task_enqueued.send(type(task.get_backend()), task_result=new_result)
    return new_result
