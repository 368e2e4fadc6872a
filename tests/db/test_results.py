"""Results built from rows: status, times, worker ids, errors, return value and task options
read back exactly as stored (rows written through the ORM stand in for a worker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.tasks import TaskResult, TaskResultStatus, default_task_backend
from django.utils import timezone

from taskmill.exceptions import DependencyFailed, TaskCancelled, TaskNotRegistered
from taskmill.models import TaskRecord
from taskmill.results import (
    cancelled_error,
    error_entry,
    options_from_storage,
    ready_result,
    ready_results,
    task_for_record,
)
from taskmill.states import State
from taskmill.task import TaskmillTask
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def stored_task(result_id: str) -> TaskmillTask[..., Any]:
    """Return the task of a result read back from the database."""
    task = default_task_backend.get_result(result_id).task
    assert isinstance(task, TaskmillTask)
    return task


def update_row(result: TaskResult[..., Any], **fields: object) -> None:
    """Write fields on a result's row directly, as a worker would have."""
    updated = TaskRecord.objects.filter(id=result.id).update(**fields)
    assert updated == 1


def test_refresh__reads_state_times_worker_ids_and_return_value_from_the_row() -> None:
    result = tasks.add.enqueue(20, 22)
    started = datetime(2030, 1, 1, 12, 0, 0, 111111, tzinfo=UTC)
    finished = datetime(2030, 1, 1, 12, 0, 3, 222222, tzinfo=UTC)
    update_row(
        result,
        state=State.SUCCEEDED,
        started_at=started,
        last_attempted_at=started,
        finished_at=finished,
        attempts=1,
        worker_ids=["host-a:1234"],
        return_value=42,
    )

    result.refresh()

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.started_at == started
    assert result.last_attempted_at == started
    assert result.finished_at == finished
    assert result.worker_ids == ["host-a:1234"]
    assert result.attempts == 1
    assert result.return_value == 42
    assert result.is_finished


def test_refresh__shows_a_running_task() -> None:
    result = tasks.noop.enqueue()
    now = timezone.now()
    update_row(
        result,
        state=State.RUNNING,
        started_at=now,
        last_attempted_at=now,
        worker_ids=["w1"],
        attempts=1,
    )

    result.refresh()

    assert result.status == TaskResultStatus.RUNNING
    assert result.started_at == now
    assert result.worker_ids == ["w1"]
    assert not result.is_finished


RETURN_VALUES: list[object] = [
    None,
    0,
    "text ✓",
    [1, [2, None]],
    {"nested": {"list": [1.5, True]}, "empty": {}},
    2**53 + 1,
]


@pytest.mark.parametrize("value", RETURN_VALUES, ids=repr)
def test_get_result__return_value_is_read_back_as_stored(value: object) -> None:
    result = tasks.echo.enqueue()
    update_row(result, state=State.SUCCEEDED, return_value=value, finished_at=timezone.now())

    fetched = default_task_backend.get_result(result.id)

    assert fetched.status == TaskResultStatus.SUCCESSFUL
    assert fetched.return_value == value


def test_get_result__errors_are_read_back_one_per_failed_attempt() -> None:
    result = tasks.fail_value_error.enqueue()
    errors = [
        {
            "exception_class_path": "builtins.ValueError",
            "traceback": "Traceback (most recent call last):\n  ...\nValueError: boom\n",
            "attempt": 1,
        },
        {
            "exception_class_path": "builtins.TimeoutError",
            "traceback": "TimeoutError: task exceeded its timeout of 30 s\n",
            "attempt": 2,
        },
    ]
    update_row(
        result,
        state=State.FAILED,
        attempts=2,
        worker_ids=["w1", "w2"],
        errors=errors,
        finished_at=timezone.now(),
    )

    fetched = default_task_backend.get_result(result.id)

    assert fetched.status == TaskResultStatus.FAILED
    assert [error.exception_class_path for error in fetched.errors] == [
        "builtins.ValueError",
        "builtins.TimeoutError",
    ]
    assert fetched.errors[0].traceback == errors[0]["traceback"]
    assert fetched.errors[0].exception_class is ValueError
    assert fetched.errors[1].exception_class is TimeoutError
    assert fetched.worker_ids == ["w1", "w2"]
    assert fetched.attempts == 2
    with pytest.raises(ValueError, match="Task failed"):
        _ = fetched.return_value


def test_get_result__cancelled_row_is_failed_with_task_cancelled() -> None:
    result = tasks.noop.enqueue()
    update_row(
        result,
        state=State.CANCELLED,
        finished_at=timezone.now(),
        errors=[
            {
                "exception_class_path": "taskmill.exceptions.TaskCancelled",
                "traceback": "taskmill.exceptions.TaskCancelled: cancelled by request\n",
                "attempt": 0,
            }
        ],
    )

    fetched = default_task_backend.get_result(result.id)

    assert fetched.status == TaskResultStatus.FAILED
    assert fetched.errors[-1].exception_class is TaskCancelled


def test_get_result__blocked_row_is_ready_for_django() -> None:
    result = tasks.noop.enqueue()
    update_row(result, state=State.BLOCKED)

    assert default_task_backend.get_result(result.id).status == TaskResultStatus.READY


def test_get_result__is_always_fresh_from_the_row() -> None:
    result = tasks.noop.enqueue()
    first = default_task_backend.get_result(result.id)
    update_row(result, worker_ids=["w9"])

    second = default_task_backend.get_result(result.id)

    assert first.worker_ids == []
    assert second.worker_ids == ["w9"]
    assert second is not first


# --- task options round trip --------------------------------------------------------------


def test_get_result__task_options_are_restored_from_the_row() -> None:
    result = tasks.configured.enqueue(1)

    task = stored_task(result.id)

    assert task.max_attempts == 3
    assert task.retry_delay == 0.5
    assert task.retry_max_delay == 10.0
    assert task.retry_on == (tasks.TransientError,)
    assert task.timeout == 30.0
    assert task.result_ttl == 3600.0
    assert task == tasks.configured


def test_get_result__options_set_with_using_are_restored_not_the_decorator_ones() -> None:
    result = tasks.configured.using(
        max_attempts=8, timeout=timedelta(minutes=2), retry_on=(KeyError,), priority=9
    ).enqueue(1)

    task = stored_task(result.id)

    assert task.max_attempts == 8
    assert task.timeout == 120.0
    assert task.retry_on == (KeyError,)
    assert task.priority == 9
    assert task.retry_delay == 0.5  # from the decorator, unchanged


def test_get_result__callable_options_are_imported_back() -> None:
    result = tasks.with_callables.enqueue(3)

    task = stored_task(result.id)

    assert task.retry_delay is tasks.delay_by_attempt
    assert task.unique is tasks.key_of_first_argument


def test_get_result__options_stored_later_in_the_row_win_over_the_code() -> None:
    # A worker runs what was enqueued, even if the decorator changed since.
    result = tasks.noop.enqueue()
    stored = dict(TaskRecord.objects.get(id=result.id).options)
    stored["max_attempts"] = 6
    update_row(result, options=stored)

    assert stored_task(result.id).max_attempts == 6


def test_get_result__row_without_options_uses_the_registered_task() -> None:
    result = tasks.configured.enqueue(1)
    update_row(result, options={})

    assert stored_task(result.id).max_attempts == 3


def test_get_result__row_of_a_task_that_no_longer_imports_is_not_registered() -> None:
    result = tasks.noop.enqueue()
    update_row(result, task_path="tests.testapp.tasks.renamed_since")

    with pytest.raises(TaskNotRegistered, match=r"'tests\.testapp\.tasks\.renamed_since' can't"):
        default_task_backend.get_result(result.id)


def test_get_result__row_naming_a_plain_function_is_not_registered() -> None:
    result = tasks.noop.enqueue()
    update_row(result, task_path="tests.testapp.tasks.not_a_task")

    with pytest.raises(TaskNotRegistered, match="only functions decorated with @task can run"):
        default_task_backend.get_result(result.id)


@pytest.mark.parametrize("option", ["retry_on", "retry_delay", "unique"])
def test_get_result__option_path_that_no_longer_imports_is_named(option: str) -> None:
    result = tasks.noop.enqueue()
    stored = dict(TaskRecord.objects.get(id=result.id).options)
    path = "tests.testapp.tasks.GoneSince"
    stored[option] = [path] if option == "retry_on" else path
    update_row(result, options=stored)

    with pytest.raises(TaskNotRegistered) as caught:
        default_task_backend.get_result(result.id)

    assert str(caught.value).startswith(f"Task option {option} names {path!r}, which can't be")


def test_options_from_storage__inverts_stored_options() -> None:
    for task in (tasks.noop, tasks.configured, tasks.with_callables):
        values = options_from_storage(task.stored_options())

        assert {name: getattr(task, name) for name in values} == values


# --- error entries ------------------------------------------------------------------------


def test_error_entry__records_class_path_message_and_attempt() -> None:
    entry = error_entry(ValueError("bad input"), 2)

    assert entry == {
        "exception_class_path": "builtins.ValueError",
        "traceback": "ValueError: bad input\n",
        "attempt": 2,
    }


def test_error_entry__keeps_a_given_traceback() -> None:
    entry = error_entry(KeyError("k"), 1, traceback="Traceback ...\nKeyError: 'k'\n")

    assert entry["traceback"] == "Traceback ...\nKeyError: 'k'\n"


def test_cancelled_error__names_task_cancelled() -> None:
    entry = cancelled_error(0)

    assert entry["exception_class_path"] == "taskmill.exceptions.TaskCancelled"
    assert "cancelled by request" in entry["traceback"]
    assert entry["attempt"] == 0


def test_dependency_failed__is_a_task_cancelled() -> None:
    assert issubclass(DependencyFailed, TaskCancelled)


def test_task_for_record__options_equal_in_python_but_not_in_json_build_different_tasks() -> None:
    result = tasks.noop.enqueue()
    row = TaskRecord.objects.get(id=result.id)
    # timeout 1 is one second; timeout true is no number (a row written by hand), so it is
    # left out. 1 == True in Python: a cache keyed on == would hand one task to both.
    row.options = {**row.options, "timeout": 1}
    with_number = task_for_record(row)
    row.options = {**row.options, "timeout": True}
    with_bool = task_for_record(row)

    assert with_number.timeout == 1
    assert with_bool.timeout == tasks.noop.timeout
    assert task_for_record(row) is with_bool  # built once, then reused


def test_ready_results__each_equals_what_ready_result_builds() -> None:
    now = timezone.now()
    ids = [f"00000000-0000-7000-8000-00000000000{n}" for n in range(3)]
    args: list[list[Any]] = [[1, "a"], [], [{"k": [None]}]]
    kwargs: list[dict[str, Any]] = [{}, {"x": 1.5}, {"y": True}]

    many = ready_results(tasks.echo, task_ids=ids, enqueued_at=now, args=args, kwargs=kwargs)

    assert all(type(result) is TaskResult for result in many)
    assert many == [
        ready_result(tasks.echo, task_id=task_id, enqueued_at=now, args=a, kwargs=k)
        for task_id, a, k in zip(ids, args, kwargs, strict=True)
    ]
    assert all(
        result.status == TaskResultStatus.READY and not result.is_finished for result in many
    )


def test_ready_results__share_no_list_a_caller_could_change() -> None:
    now = timezone.now()

    first, second = ready_results(
        tasks.echo, task_ids=["a", "b"], enqueued_at=now, args=[[], []], kwargs=[{}, {}]
    )

    for name in ("args", "kwargs", "errors", "worker_ids"):
        assert getattr(first, name) is not getattr(second, name)


def test_ready_results__none_asked_gives_none() -> None:
    assert (
        ready_results(tasks.echo, task_ids=[], enqueued_at=timezone.now(), args=[], kwargs=[]) == []
    )
