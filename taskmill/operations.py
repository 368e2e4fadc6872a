"""Operator actions (cancel, retry, history, enqueue_many, purge, schedules): the one path used
by the Python API, the command line and the admin."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
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
from .lookup import find_record
from .models import Schedule, TaskRecord, TaskRecordQuerySet
from .queue import get_queue
from .queue.clock import read_database_now
from .queue.pruning import Selection, count_by_state, delete_batches
from .results import task_for_record, to_task_result
from .routers import queue_databases
from .scheduler import timing_of
from .states import FINISHED_STATES, State
from .task import resolve_task

RETRYABLE_STATES: Final = frozenset({State.FAILED, State.CANCELLED})


def enqueue_many(task: Task[..., Any], calls: Iterable[Call]) -> list[TaskResult[..., Any]]:
    """Enqueue task once per (args, kwargs) pair, written in bulk, all or none."""
    checked = [_check_call(index, call) for index, call in enumerate(calls)]
    backend = task.get_backend()
    if isinstance(backend, DatabaseBackend):
        with _collector_paused():
            return backend.enqueue_many(task, checked)
    return [backend.enqueue(task, list(args), dict(kwargs)) for args, kwargs in checked]


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A bulk enqueue allocates a dozen objects per call (record, arguments, result) that all
    # live until it returns: the garbage collector's passes meanwhile find nothing to free,
    # yet cost 13-16% of the call's time (they walk the whole heap). Resumed only if this
    # call paused it, so a caller that disabled collection keeps it disabled.
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _check_call(index: int, call: object) -> Call:
    # The usual shapes by their exact types first: the ABC checks below cost more than the
    # rest of a row's Python work in a bulk enqueue.
    if (
        type(call) is tuple
        and len(call) == 2
        and type(call[0]) in (tuple, list)
        and type(call[1]) is dict
    ):
        return call[0], call[1]
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


def purge(
    *,
    older_than: timedelta | None = None,
    states: Collection[str] | None = None,
    dry_run: bool = False,
) -> dict[str, int]:
    """Delete finished tasks, in batches; return how many by state (or would, with dry_run).

    By default, the tasks past their result_ttl (what workers prune); with older_than, those
    finished longer ago than that. states narrows to some of succeeded, failed, cancelled.
    Raise ValueError for a state that isn't a finished one or a negative older_than.
    """
    chosen = _finished_states(states)
    if older_than is not None and older_than < timedelta(0):
        raise ValueError(f"older_than must be 0 or more, not {older_than}.")
    totals: Counter[str] = Counter()
    for database in queue_databases():
        finished_before = None
        if older_than is not None:
            finished_before = read_database_now(database) - older_than
        selection = Selection(finished_before=finished_before, states=chosen)
        if dry_run:
            totals.update(count_by_state(database, selection))
        else:
            totals.update(delete_batches(database, selection)[0])
    return dict(totals)


def _finished_states(states: Collection[str] | None) -> frozenset[State]:
    if states is None:
        return FINISHED_STATES
    allowed = sorted(FINISHED_STATES)
    wrong = sorted(set(states) - set(allowed))
    if wrong or not states:
        raise ValueError(
            f"Can't purge tasks in state(s) {', '.join(wrong) or '(none given)'}; "
            f"choose among {', '.join(allowed)}."
        )
    return frozenset(State(state) for state in states)


def set_schedules_enabled(names: Iterable[str], enabled: bool) -> int:
    """Enable or disable schedules by name; return how many changed.

    An enabled schedule starts again from its next due time after now: the time it was off is
    not caught up.
    """
    changed = 0
    for database in queue_databases():
        now = read_database_now(database)
        rows = Schedule.objects.using(database).filter(name__in=list(names), enabled=not enabled)
        for schedule in rows:
            schedule.enabled = enabled
            fields = ["enabled", "updated_at"]
            if enabled:
                schedule.next_due_at = timing_of(schedule).first_due(now)
                fields.append("next_due_at")
            schedule.save(using=database, update_fields=fields)
            changed += 1
    return changed


def run_schedule_now(name: str) -> TaskResult[..., Any]:
    """Enqueue a schedule's task now, with its arguments, outside its due times.

    Raise Schedule.DoesNotExist for an unknown name.
    """
    for database in queue_databases():
        schedule = Schedule.objects.using(database).filter(name=name).first()
        if schedule is not None:
            task = resolve_task(schedule.task_path)
            return task.enqueue(*schedule.args, **schedule.kwargs)
    raise Schedule.DoesNotExist(f"No schedule named {name!r}.")


def retry_task(result: str | TaskResult[..., Any]) -> TaskResult[..., Any]:
    """Enqueue a failed or cancelled task again, as a new result whose retry_of is the old one.

    The new task has the old one's arguments and options and no dependencies; the old result
    is left as it is. Raise TaskResultDoesNotExist for an unknown id, NotRetryable for a task
    that is not failed or cancelled, TaskNotRegistered if its task no longer exists.
    """
    record = find_record(result)
    return _enqueue_again(record, str(record._state.db))


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
