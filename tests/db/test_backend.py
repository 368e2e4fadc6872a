"""DatabaseBackend against a real database: the BaseTaskBackend contract as Django documents and
tests it (enqueue == get_result, pickling, unknown ids, transactions, run_after, priority, queues,
async variants, task_enqueued), and results showing the stored state."""

from __future__ import annotations

import contextlib
import logging
import pickle
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.tasks import (
    Task,
    TaskResult,
    TaskResultStatus,
    default_task_backend,
    task_backends,
)
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
from django.tasks.signals import task_enqueued
from django.test import override_settings
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

import taskmill
from taskmill.backend import DatabaseBackend
from taskmill.codec import MODEL_KEY, PK_KEY
from taskmill.exceptions import ConfigurationError
from taskmill.models import TaskRecord
from taskmill.states import State
from taskmill.task import TaskmillTask
from tests.testapp import tasks
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

type Call = tuple[TaskmillTask[..., Any], tuple[object, ...], dict[str, object]]

UNKNOWN_IDS = ["123", "", "not-a-uuid", str(uuid.uuid4()), "0" * 32, "' OR 1=1 --"]


@pytest.fixture
def enqueued_signals() -> Iterator[list[tuple[object, TaskResult[..., Any]]]]:
    """Collect (sender, task_result) of every task_enqueued signal sent during the test."""
    received: list[tuple[object, TaskResult[..., Any]]] = []

    def receive(sender: object, task_result: TaskResult[..., Any], **kwargs: object) -> None:
        received.append((sender, task_result))

    task_enqueued.connect(receive, weak=False)
    yield received
    task_enqueued.disconnect(receive)


def update_row(result: TaskResult[..., Any], **fields: object) -> None:
    """Write fields on a result's row directly, as a worker would have."""
    updated = TaskRecord.objects.filter(id=result.id).update(**fields)
    assert updated == 1


# --- the backend --------------------------------------------------------------------------


def test_backend__is_the_configured_default_and_supports_everything() -> None:
    backend = task_backends["default"]

    assert isinstance(backend, DatabaseBackend)
    assert backend.supports_defer is True
    assert backend.supports_async_task is True
    assert backend.supports_get_result is True
    assert backend.supports_priority is True
    assert backend.task_class is TaskmillTask
    assert backend.queues == {"default", "reports", "low"}
    assert backend.database_alias == "default"


def test_backend__check_is_clean_for_the_test_settings() -> None:
    assert task_backends["default"].check() == []


# --- enqueue and get_result round trip ----------------------------------------------------


ROUND_TRIPS: dict[str, Call] = {
    "no arguments": (tasks.noop, (), {}),
    "positional": (tasks.add, (2, 3), {}),
    "nested json": (
        tasks.echo,
        (1, (2, [3.5, None])),
        {"flag": True, "data": {"a": ["b", {"c": "ünï ✓"}]}},
    ),
    "options": (tasks.configured, (7,), {}),
    "callable options": (tasks.with_callables, (1,), {}),
    "queue and priority": (tasks.build_report, (42,), {}),
    "using": (tasks.noop.using(priority=-20, queue_name="low", max_attempts=4), (), {}),
    "run_after": (
        tasks.noop.using(run_after=datetime(2031, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)),
        (),
        {},
    ),
    "async task": (tasks.async_add, (1, 2), {}),
    "context task": (tasks.attempt_number, (), {}),
}


@pytest.mark.parametrize(("task", "args", "kwargs"), ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_enqueue__result_equals_get_result_right_after(
    task: TaskmillTask[..., Any], args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    result = task.enqueue(*args, **kwargs)

    fetched = default_task_backend.get_result(result.id)

    assert fetched == result
    # Timestamps round-trip exactly, microseconds included, on every database.
    assert fetched.enqueued_at == result.enqueued_at
    assert fetched.task.run_after == result.task.run_after
    # As with Django's own backends, the result's task is the task that was enqueued.
    assert result.task == task
    assert fetched.task == task
    assert fetched.args == result.args
    assert fetched.kwargs == result.kwargs


@pytest.mark.parametrize(("task", "args", "kwargs"), ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_enqueue__result_pickles_and_unpickles_equal(
    task: TaskmillTask[..., Any], args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    result = task.enqueue(*args, **kwargs)

    restored = pickle.loads(pickle.dumps(result))  # noqa: S301 - our own data
    fetched = pickle.loads(pickle.dumps(task.get_result(result.id)))  # noqa: S301

    assert restored == result
    assert restored.task.func is result.task.func
    assert fetched == result


def test_enqueue__new_result_is_ready_with_nothing_attempted() -> None:
    before = timezone.now()
    result = tasks.add.enqueue(1, 2)
    after = timezone.now()

    assert isinstance(result, TaskResult)
    assert uuid.UUID(result.id).version == 7
    assert result.status == TaskResultStatus.READY
    assert result.backend == "default"
    assert result.args == [1, 2]
    assert result.kwargs == {}
    assert result.enqueued_at is not None
    assert before <= result.enqueued_at <= after
    assert result.started_at is None
    assert result.finished_at is None
    assert result.last_attempted_at is None
    assert result.errors == []
    assert result.worker_ids == []
    assert result.attempts == 0
    assert not result.is_finished
    with pytest.raises(ValueError, match="Task has not finished yet"):
        _ = result.return_value


def test_enqueue__row_holds_the_call() -> None:
    result = tasks.echo.using(priority=3).enqueue(1, "two", when="soon")

    record = TaskRecord.objects.get(id=result.id)
    assert record.task_path == "tests.testapp.tasks.echo"
    assert record.state == State.READY
    assert record.args == [1, "two"]
    assert record.kwargs == {"when": "soon"}
    assert record.priority == 3
    assert record.queue_name == "default"
    assert record.backend == "default"
    assert record.attempts == 0
    # No sentinel: a task without run_after is due from its enqueue time.
    assert record.run_after == record.enqueued_at


def test_enqueue__in_autocommit_is_one_statement_holding_the_insert(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    # No transaction around it and, on PostgreSQL, the NOTIFY rides in the same statement.
    with django_assert_num_queries(1) as captured:
        result = tasks.add.enqueue(1, 2)

    assert "INSERT INTO" in captured.captured_queries[0]["sql"]
    row = TaskRecord.objects.get(id=result.id)
    assert (row.state, row.args, row.task_path) == ("ready", [1, 2], tasks.add.module_path)


def test_enqueue__tuples_are_stored_as_lists() -> None:
    result = tasks.echo.enqueue((1, (2, 3)))

    assert result.args == [[1, [2, 3]]]
    assert TaskRecord.objects.get(id=result.id).args == [[1, [2, 3]]]


def test_enqueue__model_instances_are_stored_by_reference() -> None:
    article = Article.objects.create(title="Hello")

    result = tasks.title_of.enqueue(article)

    reference = {MODEL_KEY: "testapp.article", PK_KEY: article.pk}
    assert result.args == [reference]
    assert TaskRecord.objects.get(id=result.id).args == [reference]
    assert default_task_backend.get_result(result.id).args == [reference]


def test_enqueue__unsupported_argument_fails_naming_it_and_stores_nothing() -> None:
    with pytest.raises(
        TypeError, match=r"^Unsupported type datetime\.datetime for kwargs\['when'\]"
    ):
        tasks.echo.enqueue(1, when=timezone.now())

    assert not TaskRecord.objects.exists()


def test_enqueue__text_some_database_cannot_store_fails_before_the_database() -> None:
    with transaction.atomic():
        with pytest.raises(TypeError, match=r"^Unsupported value for args\[0\]: text with a NUL"):
            tasks.echo.enqueue("a\x00b")
        # The refusal came before any SQL: the transaction is still usable (PostgreSQL would
        # have aborted it on a failed INSERT).
        result = tasks.echo.enqueue("ab")

    assert list(TaskRecord.objects.values_list("args", flat=True)) == [["ab"]]
    assert default_task_backend.get_result(result.id) == result


def test_enqueue__unsaved_model_instance_fails_and_stores_nothing() -> None:
    with pytest.raises(TypeError, match=r"^Unsupported value for args\[0\]: the Article instance"):
        tasks.title_of.enqueue(Article(title="draft"))

    assert not TaskRecord.objects.exists()


def test_enqueue__each_call_gets_a_new_id() -> None:
    ids = {tasks.noop.enqueue().id for _ in range(5)}

    assert len(ids) == 5
    assert TaskRecord.objects.count() == 5


# --- validate_task ------------------------------------------------------------------------


def test_validate_task__a_plain_django_task_is_refused() -> None:
    with pytest.raises(InvalidTask, match=r"tests\.testapp\.tasks\.noop is a Task; the 'default'"):
        Task(
            func=tasks.noop.func,
            priority=0,
            backend="default",
            queue_name="default",
            run_after=None,
        )


def test_enqueue__a_task_that_is_not_registered_at_its_path_is_refused() -> None:
    unregistered = taskmill.task(tasks.not_a_task)

    with pytest.raises(InvalidTask, match="not a registered Taskmill task"):
        unregistered.enqueue()

    assert not TaskRecord.objects.exists()


def test_enqueue__a_task_whose_path_names_another_function_is_refused() -> None:
    def stand_in() -> None:
        """A second function claiming the path of the registered tests.testapp.tasks.noop."""

    stand_in.__module__ = "tests.testapp.tasks"
    stand_in.__qualname__ = stand_in.__name__ = "noop"
    impostor = taskmill.task(stand_in)

    with pytest.raises(InvalidTask, match=r"tests\.testapp\.tasks\.noop resolves to another"):
        impostor.enqueue()

    assert not TaskRecord.objects.exists()


# --- unknown and malformed ids ------------------------------------------------------------


@pytest.mark.parametrize("result_id", UNKNOWN_IDS)
def test_get_result__unknown_or_malformed_id_raises_does_not_exist(result_id: str) -> None:
    tasks.noop.enqueue()

    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result_id)
    with pytest.raises(TaskResultDoesNotExist):
        tasks.noop.get_result(result_id)


@pytest.mark.parametrize("result_id", UNKNOWN_IDS)
def test_aget_result__unknown_or_malformed_id_raises_does_not_exist(result_id: str) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(default_task_backend.aget_result)(result_id)
    with pytest.raises(TaskResultDoesNotExist):
        async_to_sync(tasks.noop.aget_result)(result_id)


def test_get_result__accepts_the_id_in_any_uuid_spelling() -> None:
    result = tasks.noop.enqueue()

    assert default_task_backend.get_result(result.id.upper()) == result
    assert default_task_backend.get_result(uuid.UUID(result.id).hex) == result


def test_task_get_result__result_of_another_task_is_a_mismatch() -> None:
    result = tasks.noop.enqueue()

    with pytest.raises(TaskResultMismatch):
        tasks.add.get_result(result.id)


# --- transactions -------------------------------------------------------------------------


def test_enqueue__inside_atomic_is_visible_inside_it() -> None:
    with transaction.atomic():
        result = tasks.noop.enqueue()

        assert default_task_backend.get_result(result.id) == result
        assert TaskRecord.objects.filter(id=result.id).exists()

    assert default_task_backend.get_result(result.id) == result


def test_enqueue__rolled_back_with_the_atomic_block() -> None:
    kept = tasks.noop.enqueue()

    with transaction.atomic():
        result = tasks.add.enqueue(1, 2)
        assert default_task_backend.get_result(result.id) == result
        transaction.set_rollback(True)

    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(result.id)
    assert list(TaskRecord.objects.values_list("id", flat=True)) == [uuid.UUID(kept.id)]


class RollbackError(Exception):
    """Raised inside an atomic block to roll it back, as a failing view would."""


def enqueue_then_fail() -> TaskResult[..., Any]:
    enqueued: list[TaskResult[..., Any]] = []
    with contextlib.suppress(RollbackError), transaction.atomic():
        enqueued.append(tasks.noop.enqueue())
        raise RollbackError
    return enqueued[0]


@pytest.mark.django_db(transaction=True)
def test_enqueue__exists_only_if_the_outer_transaction_commits() -> None:
    rolled_back = enqueue_then_fail()
    with transaction.atomic():
        committed = tasks.noop.enqueue()

    assert not TaskRecord.objects.filter(id=rolled_back.id).exists()
    assert default_task_backend.get_result(committed.id) == committed


# --- run_after, priority, queues ----------------------------------------------------------


def test_enqueue__aware_run_after_is_stored_exactly() -> None:
    when = datetime(2030, 6, 1, 8, 30, 15, 123456, tzinfo=UTC)

    result = tasks.noop.using(run_after=when).enqueue()

    assert result.task.run_after == when
    assert TaskRecord.objects.get(id=result.id).run_after == when
    assert default_task_backend.get_result(result.id).task.run_after == when


def test_enqueue__run_after_in_another_timezone_is_the_same_instant() -> None:
    when = datetime(2030, 6, 1, 10, 0, tzinfo=UTC).astimezone(
        timezone.get_fixed_timezone(timedelta(hours=5, minutes=30))
    )

    result = tasks.noop.using(run_after=when).enqueue()

    assert default_task_backend.get_result(result.id).task.run_after == when


@pytest.mark.parametrize(
    "delay", [timedelta(minutes=10), 600, 600.5], ids=["timedelta", "seconds", "float seconds"]
)
def test_enqueue__run_after_delay_is_stored_from_now(delay: timedelta | float) -> None:
    before = timezone.now()
    result = tasks.noop.using(run_after=delay).enqueue()
    after = timezone.now()

    run_after = TaskRecord.objects.get(id=result.id).run_after
    assert before + timedelta(seconds=600) <= run_after <= after + timedelta(seconds=601)
    assert default_task_backend.get_result(result.id).task.run_after == run_after


def test_enqueue__naive_run_after_is_refused() -> None:
    with pytest.raises(InvalidTask, match="run_after must be an aware datetime"):
        tasks.noop.using(run_after=datetime(2030, 1, 1)).enqueue()

    assert not TaskRecord.objects.exists()


@pytest.mark.parametrize("priority", [-100, -1, 0, 57, 100])
def test_enqueue__priority_is_stored(priority: int) -> None:
    result = tasks.noop.using(priority=priority).enqueue()

    assert TaskRecord.objects.get(id=result.id).priority == priority
    assert default_task_backend.get_result(result.id).task.priority == priority


@pytest.mark.parametrize("priority", [-101, 101])
def test_enqueue__priority_out_of_range_is_refused(priority: int) -> None:
    with pytest.raises(InvalidTask, match="priority must be a whole number between -100 and 100"):
        tasks.noop.using(priority=priority).enqueue()

    assert not TaskRecord.objects.exists()


@pytest.mark.parametrize("queue_name", ["default", "reports", "low"])
def test_enqueue__queue_name_is_stored(queue_name: str) -> None:
    result = tasks.noop.using(queue_name=queue_name).enqueue()

    assert TaskRecord.objects.get(id=result.id).queue_name == queue_name
    assert default_task_backend.get_result(result.id).task.queue_name == queue_name


def test_enqueue__unknown_queue_is_refused() -> None:
    with pytest.raises(InvalidTask, match="Queue 'elsewhere' is not valid for backend"):
        tasks.noop.using(queue_name="elsewhere").enqueue()

    assert not TaskRecord.objects.exists()


# --- async variants -----------------------------------------------------------------------


def test_aenqueue__stores_the_task_and_equals_get_result() -> None:
    result = async_to_sync(tasks.add.aenqueue)(4, 5)

    assert result.status == TaskResultStatus.READY
    assert result.args == [4, 5]
    assert default_task_backend.get_result(result.id) == result


def test_aget_result__returns_the_stored_result() -> None:
    result = tasks.add.enqueue(1, 1)

    assert async_to_sync(default_task_backend.aget_result)(result.id) == result
    assert async_to_sync(tasks.add.aget_result)(result.id) == result


def test_async_task__can_be_enqueued_sync_and_async() -> None:
    from_sync = tasks.async_add.enqueue(1, 2)
    from_async = async_to_sync(tasks.async_add.aenqueue)(3, 4)

    assert default_task_backend.get_result(from_sync.id).task.func is tasks.async_add.func
    assert default_task_backend.get_result(from_async.id).args == [3, 4]
    assert TaskRecord.objects.filter(task_path="tests.testapp.tasks.async_add").count() == 2


def test_arefresh__reads_the_new_state() -> None:
    result = tasks.add.enqueue(2, 2)
    update_row(result, state=State.SUCCEEDED, return_value=4, finished_at=timezone.now())

    async_to_sync(result.arefresh)()

    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 4


# --- task_enqueued ------------------------------------------------------------------------


def test_task_enqueued__sent_once_per_enqueue_with_the_backend_class_as_sender(
    enqueued_signals: list[tuple[object, TaskResult[..., Any]]],
) -> None:
    first = tasks.noop.enqueue()
    second = tasks.add.enqueue(1, 2)

    assert enqueued_signals == [(DatabaseBackend, first), (DatabaseBackend, second)]


def test_task_enqueued__sent_for_aenqueue_too(
    enqueued_signals: list[tuple[object, TaskResult[..., Any]]],
) -> None:
    result = async_to_sync(tasks.noop.aenqueue)()

    assert enqueued_signals == [(DatabaseBackend, result)]


def test_task_enqueued__not_sent_when_enqueue_fails(
    enqueued_signals: list[tuple[object, TaskResult[..., Any]]],
) -> None:
    with pytest.raises(TypeError):
        tasks.echo.enqueue({1, 2})

    assert enqueued_signals == []


def test_task_enqueued__receiver_can_read_the_result_in_the_enqueuing_transaction(
    enqueued_signals: list[tuple[object, TaskResult[..., Any]]],
) -> None:
    # Django sends the signal at enqueue time, as its own backends do; the receiver sees a
    # result that exists in the enqueuing transaction.
    with transaction.atomic():
        result = tasks.noop.enqueue()
        assert enqueued_signals == [(DatabaseBackend, result)]
        assert default_task_backend.get_result(enqueued_signals[0][1].id) == result


def test_task_enqueued__django_logs_each_enqueue(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="django.tasks"):
        result = tasks.noop.enqueue()

    assert [record.getMessage() for record in caplog.records] == [
        f"Task id={result.id} path=tests.testapp.tasks.noop enqueued backend=default"
    ]


# --- backend configuration errors reach the caller ----------------------------------------


def test_enqueue__backend_with_bad_options_raises_configuration_error() -> None:
    bad = {
        "default": {
            "BACKEND": "taskmill.backend.DatabaseBackend",
            "QUEUES": ["default"],
            "OPTIONS": {"DATABSE": "default"},
        }
    }
    with override_settings(TASKS=bad), pytest.raises(ConfigurationError) as caught:
        tasks.noop.enqueue()

    message = str(caught.value)
    assert "Unknown key 'DATABSE' in TASKS['default']['OPTIONS']" in message
    assert "Allowed keys: DATABASE" in message
