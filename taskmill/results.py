"""Build django.tasks.TaskResult objects from TaskRecord rows, always fresh from the row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from traceback import format_exception_only
from typing import Any, Final, TypedDict

from django.tasks import TaskResult
from django.tasks.base import TaskError
from django.utils.module_loading import import_string

from .exceptions import TaskCancelled, TaskNotRegistered
from .models import TaskRecord
from .row_checks import read_errors, read_options, read_worker_ids
from .states import State, to_django_status
from .task import StoredOptions, TaskmillTask, resolve_task

BUILT_TASKS_CACHE_SIZE: Final = 256
_BUILT_TASKS: dict[tuple[object, ...], tuple[TaskmillTask[..., Any], TaskmillTask[..., Any]]] = {}


class StoredError(TypedDict):
    """One failed attempt, as kept in TaskRecord.errors."""

    exception_class_path: str
    traceback: str
    attempt: int


class StoredHandBack(TypedDict):
    """An attempt a graceful shutdown stopped part-way and handed back, as kept in
    TaskRecord.handed_back. It isn't counted (its number is used again), but it ran."""

    attempt: int
    worker_id: str
    handed_back_at: str  # ISO 8601


def error_entry(error: BaseException, attempt: int, traceback: str | None = None) -> StoredError:
    """Return the stored form of an error raised (or made up) for an attempt."""
    kind = type(error)
    return StoredError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
        traceback=traceback if traceback is not None else "".join(format_exception_only(error)),
        attempt=attempt,
    )


def cancelled_error(attempt: int) -> StoredError:
    """Return the error entry of a task cancelled by request."""
    return error_entry(TaskCancelled("cancelled by request"), attempt)


def _import_option(option: str, path: str) -> Any:
    try:
        return import_string(path)
    except ImportError as error:
        raise TaskNotRegistered(
            f"Task option {option} names {path!r}, which can't be imported ({error}); was it "
            "renamed or removed?"
        ) from error


def options_from_storage(stored: StoredOptions | dict[str, Any]) -> dict[str, Any]:
    """Turn stored options back into task field values (paths imported back to objects).

    Raise TaskNotRegistered if a stored path (retry_on, retry_delay, unique) doesn't import.
    """
    # Only well-typed options: a row written by hand shows (and fails) with defaults instead
    # of making every reader raise; the worker names what was wrong (row_checks).
    usable, _ = read_options(stored)
    values: dict[str, Any] = {
        name: usable[name]
        for name in ("max_attempts", "retry_max_delay", "timeout", "result_ttl")
        if name in usable
    }
    if "retry_on" in usable:
        values["retry_on"] = tuple(_import_option("retry_on", path) for path in usable["retry_on"])
    for option in ("retry_delay", "unique"):
        if option in usable:
            value = usable[option]
            values[option] = _import_option(option, value) if isinstance(value, str) else value
    return values


def _given_run_after(record: TaskRecord) -> datetime | None:
    # run_after is NOT NULL, stored as the enqueue time when none was given; the result shows
    # None then, so result.task equals the task that was enqueued (as Django's backends do).
    return None if record.run_after == record.enqueued_at else record.run_after


def task_for_record(
    record: TaskRecord, registered: TaskmillTask[..., Any] | None = None
) -> TaskmillTask[..., Any]:
    """Return the task as it was enqueued: the registered task with the row's values."""
    base = registered if registered is not None else resolve_task(record.task_path)
    run_after = _given_run_after(record)
    # Tasks are frozen, and a worker sees the same few (task, options) pairs again and again:
    # building one (replace() validates every option) costs more than running a short task.
    key = (
        id(base),
        record.priority,
        record.queue_name,
        run_after,
        record.backend,
        # repr, not json.dumps(sort_keys=True), at a third of the cost: options are JSON
        # values, and repr tells 1, 1.0 and True apart as JSON does; the same options in
        # another key order only miss the cache.
        repr(record.options),
    )
    cached = _BUILT_TASKS.get(key)
    if cached is not None and cached[0] is base:
        return cached[1]
    task = replace(
        base,
        priority=record.priority,
        queue_name=record.queue_name,
        run_after=run_after,
        backend=record.backend,
        depends_on=(),
        for_object=None,
        **options_from_storage(record.options),
    )
    if len(_BUILT_TASKS) >= BUILT_TASKS_CACHE_SIZE:
        _BUILT_TASKS.clear()
    # The base is kept with the task, so its id() can't be reused by another object meanwhile.
    _BUILT_TASKS[key] = (base, task)
    return task


def to_task_result(
    record: TaskRecord,
    registered: TaskmillTask[..., Any] | None = None,
    *,
    task: TaskmillTask[..., Any] | None = None,
) -> TaskResult[..., Any]:
    """Build the TaskResult a caller sees for this row; `task`, if given, is the row's task
    already built by task_for_record.

    Raise TaskNotRegistered if the row names a task or an option that no longer imports.
    """
    result: TaskResult[..., Any] = TaskResult(
        task=task if task is not None else task_for_record(record, registered),
        id=str(record.id),
        status=to_django_status(record.state),
        enqueued_at=record.enqueued_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        last_attempted_at=record.last_attempted_at,
        args=record.args,
        kwargs=record.kwargs,
        backend=record.backend,
        errors=[
            TaskError(exception_class_path=e["exception_class_path"], traceback=e["traceback"])
            for e in read_errors(record.errors)[0]
        ],
        worker_ids=list(read_worker_ids(record.worker_ids)[0]),
    )
    # Django's TaskResult offers no constructor argument for the return value; its own
    # backends set it the same way right after construction.
    object.__setattr__(result, "_return_value", record.return_value)
    return result


def ready_result(
    task: TaskmillTask[..., Any],
    *,
    task_id: str,
    enqueued_at: datetime,
    args: list[Any],
    kwargs: dict[str, Any],
) -> TaskResult[..., Any]:
    """Build the result of a task just enqueued, equal to what to_task_result() builds from
    its new row; `task` is the row's task, as task_for_record() builds it."""
    return TaskResult(
        task=task,
        id=task_id,
        status=to_django_status(State.READY),
        enqueued_at=enqueued_at,
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=args,
        kwargs=kwargs,
        backend=task.backend,
        errors=[],
        worker_ids=[],
    )


# TaskResult's slots with a setter each, and the fields that differ between the results of one
# enqueue_many() (ready_results): an id and arguments of their own, and fresh lists for what
# the task's life appends to.
_RESULT_SETTERS: Final = {
    name: getattr(TaskResult, name).__set__
    for cls in TaskResult.__mro__
    for name in getattr(cls, "__slots__", ())
    if name != "__weakref__"
}
_PER_RESULT: Final = frozenset({"id", "args", "kwargs", "errors", "worker_ids"})


def ready_results(
    task: TaskmillTask[..., Any],
    *,
    task_ids: Sequence[str],
    enqueued_at: datetime,
    args: Sequence[list[Any]],
    kwargs: Sequence[dict[str, Any]],
) -> list[TaskResult[..., Any]]:
    """Build the results of many calls of one task just enqueued together, each equal to what
    ready_result() builds for it.

    The first is built by TaskResult's own constructor; the others copy its values slot by
    slot and set their own. The constructor validates and copies the task's values and walks
    the arguments again (normalize_json), which cost a bulk enqueue more than writing the row;
    the arguments here are already JSON (codec.encode_arguments), which it would return equal.
    """
    if not task_ids:
        return []
    first = ready_result(
        task, task_id=task_ids[0], enqueued_at=enqueued_at, args=args[0], kwargs=kwargs[0]
    )
    shared = [
        (setter, getattr(first, name))
        for name, setter in _RESULT_SETTERS.items()
        if name not in _PER_RESULT
    ]
    set_id, set_args, set_kwargs = (_RESULT_SETTERS[name] for name in ("id", "args", "kwargs"))
    set_errors, set_worker_ids = _RESULT_SETTERS["errors"], _RESULT_SETTERS["worker_ids"]
    new = object.__new__
    results = [first]
    for task_id, call_args, call_kwargs in zip(task_ids[1:], args[1:], kwargs[1:], strict=True):
        result = new(TaskResult)
        for setter, value in shared:
            setter(result, value)
        set_id(result, task_id)
        set_args(result, call_args)
        set_kwargs(result, call_kwargs)
        set_errors(result, [])
        set_worker_ids(result, [])
        results.append(result)
    return results
