"""Operator actions: enqueue_many (bulk, in order, bounded queries), cancel and history."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.tasks import TaskResult, TaskResultStatus, default_task_backend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

import taskmill
from taskmill.backend import Call
from taskmill.models import TaskRecord
from taskmill.queue.graph import INSERT_BATCH_SIZE
from taskmill.states import State
from tests.testapp import tasks
from tests.testapp.models import Article, Token

pytestmark = pytest.mark.django_db

# One enqueue_many of BULK_SIZE calls may take one INSERT per batch, plus a savepoint and its
# release and a wake-up for the workers: a handful of queries, not one per call.
BULK_SIZE = 1200
BULK_QUERY_BUDGET = math.ceil(BULK_SIZE / INSERT_BATCH_SIZE) + 3


def set_state(result: TaskResult[..., Any], state: State, **fields: object) -> None:
    """Put a result's row in a state by hand, as a worker would have."""
    assert TaskRecord.objects.filter(id=result.id).update(state=state, **fields) == 1


def state_of(result: TaskResult[..., Any]) -> str:
    return TaskRecord.objects.get(id=result.id).state


# --- enqueue_many -------------------------------------------------------------------------


def test_enqueue_many__returns_one_result_per_call_in_order() -> None:
    calls: list[Call] = [((index, index * 2), {}) for index in range(10)]

    results = taskmill.enqueue_many(tasks.add, calls)

    assert [result.args for result in results] == [[i, i * 2] for i in range(10)]
    assert len({result.id for result in results}) == 10
    assert all(result.status == TaskResultStatus.READY for result in results)
    for result in results:
        assert default_task_backend.get_result(result.id) == result


def test_enqueue_many__keyword_arguments_and_list_pairs_are_accepted() -> None:
    calls = [((), {"a": 1}), [[1], {"b": [2]}], ([], {})]

    results = taskmill.enqueue_many(tasks.echo, calls)  # type: ignore[arg-type]  # lists too

    assert [(result.args, result.kwargs) for result in results] == [
        ([], {"a": 1}),
        ([1], {"b": [2]}),
        ([], {}),
    ]


def test_enqueue_many__accepts_any_iterable_of_calls() -> None:
    results = taskmill.enqueue_many(tasks.add, (((n, 1), {}) for n in range(3)))

    assert [result.args for result in results] == [[0, 1], [1, 1], [2, 1]]


def test_enqueue_many__no_calls_enqueue_nothing() -> None:
    assert taskmill.enqueue_many(tasks.noop, []) == []
    assert not TaskRecord.objects.exists()


def test_enqueue_many__inserts_in_batches_with_a_bounded_number_of_queries(
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    calls: list[Call] = [((n, n), {}) for n in range(BULK_SIZE)]

    with django_assert_max_num_queries(BULK_QUERY_BUDGET):
        results = taskmill.enqueue_many(tasks.add, calls)

    assert len(results) == BULK_SIZE
    assert TaskRecord.objects.count() == BULK_SIZE
    assert results[-1].args == [BULK_SIZE - 1, BULK_SIZE - 1]
    assert default_task_backend.get_result(results[-1].id) == results[-1]


def test_enqueue_many__uses_the_task_options() -> None:
    results = taskmill.enqueue_many(
        tasks.configured.using(priority=7, queue_name="low"), [((1,), {}), ((2,), {})]
    )

    records = TaskRecord.objects.filter(id__in=[result.id for result in results])
    assert {(record.priority, record.queue_name) for record in records} == {(7, "low")}
    assert {record.options["max_attempts"] for record in records} == {3}


def test_enqueue_many__sends_task_enqueued_once_per_call(
    enqueued_signals: list[TaskResult[..., Any]],
) -> None:
    results = taskmill.enqueue_many(tasks.add, [((1, 1), {}), ((2, 2), {})])

    assert enqueued_signals == results


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        ([(1, 2)], r"calls\[0\] must be an \(args, kwargs\) pair"),
        ([((1,), {}), ((1,),)], r"calls\[1\] must be an \(args, kwargs\) pair .* not \(\(1,\),\)"),
        ([("ab", {})], r"calls\[0\] must be an \(args, kwargs\) pair"),
        ([((), [])], r"calls\[0\] must be an \(args, kwargs\) pair"),
        ([((), {}, {})], r"calls\[0\] must be an \(args, kwargs\) pair"),
        ([{"args": (), "kwargs": {}}], r"calls\[0\] must be an \(args, kwargs\) pair"),
        ([None], r"calls\[0\] must be an \(args, kwargs\) pair .* not None"),
    ],
)
def test_enqueue_many__malformed_calls_are_refused_with_a_type_error(
    calls: list[Any], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        taskmill.enqueue_many(tasks.echo, calls)

    assert not TaskRecord.objects.exists()


def test_enqueue_many__one_bad_argument_enqueues_none_of_the_calls() -> None:
    with pytest.raises(TypeError, match=r"Unsupported type builtins\.set for args\[0\]"):
        taskmill.enqueue_many(tasks.echo, [((1,), {}), (({1},), {})])

    assert not TaskRecord.objects.exists()


def test_enqueue_many__invalid_task_is_refused() -> None:
    with pytest.raises(InvalidTask, match="Queue 'nowhere' is not valid"):
        taskmill.enqueue_many(tasks.noop.using(queue_name="nowhere"), [((), {})])


def test_enqueue_many__rolled_back_with_the_atomic_block() -> None:
    with transaction.atomic():
        results = taskmill.enqueue_many(tasks.add, [((1, 1), {}), ((2, 2), {})])
        assert TaskRecord.objects.count() == 2
        transaction.set_rollback(True)

    assert not TaskRecord.objects.exists()
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result(results[0].id)


# --- cancel -------------------------------------------------------------------------------


def test_cancel__queued_task_is_cancelled_with_a_task_cancelled_error() -> None:
    result = tasks.noop.enqueue()
    before = timezone.now()

    assert taskmill.cancel(result.id) is True

    record = TaskRecord.objects.get(id=result.id)
    assert record.state == State.CANCELLED
    assert record.finished_at is not None
    assert record.finished_at >= before
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert result.is_finished
    assert [error.exception_class_path for error in result.errors] == [
        "taskmill.exceptions.TaskCancelled"
    ]
    assert result.errors[0].exception_class is taskmill.exceptions.TaskCancelled
    assert "cancelled by request" in result.errors[0].traceback


def test_cancel__a_task_due_later_is_cancelled() -> None:
    result = tasks.noop.using(run_after=3600).enqueue()

    assert taskmill.cancel(result.id) is True
    assert state_of(result) == State.CANCELLED


@pytest.mark.parametrize("state", [State.SUCCEEDED, State.FAILED, State.CANCELLED])
def test_cancel__finished_task_returns_false_and_changes_nothing(state: State) -> None:
    result = tasks.noop.enqueue()
    set_state(result, state, finished_at=timezone.now())
    before = TaskRecord.objects.get(id=result.id)

    assert taskmill.cancel(result.id) is False

    after = TaskRecord.objects.get(id=result.id)
    assert after.state == state
    assert after.errors == before.errors
    assert after.finished_at == before.finished_at


def test_cancel__second_cancel_returns_false() -> None:
    result = tasks.noop.enqueue()

    assert taskmill.cancel(result.id) is True
    assert taskmill.cancel(result.id) is False
    assert len(TaskRecord.objects.get(id=result.id).errors) == 1


@pytest.mark.parametrize("result_id", [str(uuid.uuid4()), "123", "", "not-an-id"])
def test_cancel__unknown_or_malformed_id_raises_does_not_exist(result_id: str) -> None:
    tasks.noop.enqueue()

    with pytest.raises(TaskResultDoesNotExist):
        taskmill.cancel(result_id)


def test_cancel__running_task_is_flagged_for_its_worker() -> None:
    result = tasks.sleep_for.enqueue(60)
    started = timezone.now()
    set_state(
        result,
        State.RUNNING,
        started_at=started,
        last_attempted_at=started,
        attempts=1,
        worker_ids=["w1"],
        lease_owner="w1",
        lease_expires_at=started + timedelta(seconds=30),
    )
    before = timezone.now()

    assert taskmill.cancel(result.id) is True

    record = TaskRecord.objects.get(id=result.id)
    # The worker owning the lease kills the process and records the outcome; the row stays
    # running until then.
    assert record.state == State.RUNNING
    assert record.cancel_requested_at is not None
    assert record.cancel_requested_at >= before
    assert record.finished_at is None
    assert record.errors == []


def test_cancel__blocked_task_is_cancelled() -> None:
    dependency = tasks.noop.enqueue()
    blocked = tasks.noop.using(depends_on=[dependency]).enqueue()
    assert state_of(blocked) == State.BLOCKED

    assert taskmill.cancel(blocked.id) is True

    assert state_of(blocked) == State.CANCELLED
    assert state_of(dependency) == State.READY


def test_cancel__accepts_the_id_in_another_spelling() -> None:
    result = tasks.noop.enqueue()

    assert taskmill.cancel(result.id.upper()) is True
    assert state_of(result) == State.CANCELLED


# --- history ------------------------------------------------------------------------------


def test_history__lists_the_tasks_of_an_object_newest_first() -> None:
    article = Article.objects.create(title="a")
    other = Article.objects.create(title="b")
    first = tasks.noop.using(for_object=article).enqueue()
    tasks.noop.using(for_object=other).enqueue()
    tasks.noop.enqueue()
    second = tasks.add.using(for_object=article).enqueue(1, 2)

    history = list(taskmill.history(article))

    assert [str(record.id) for record in history] == [second.id, first.id]
    assert [record.task_path for record in history] == [
        "tests.testapp.tasks.add",
        "tests.testapp.tasks.noop",
    ]


def test_history__works_for_uuid_primary_keys() -> None:
    token = Token.objects.create(id=uuid.uuid4(), label="t")
    result = tasks.noop.using(for_object=token).enqueue()

    assert [str(record.id) for record in taskmill.history(token)] == [result.id]


def test_history__object_without_tasks_has_an_empty_history() -> None:
    article = Article.objects.create(title="quiet")
    tasks.noop.enqueue()

    assert not taskmill.history(article).exists()


def test_history__same_pk_of_another_model_is_not_mixed_in() -> None:
    article = Article.objects.create(title="a")
    tasks.noop.using(for_object=article).enqueue()
    token = Token.objects.create(id=uuid.uuid4(), label="t")

    assert taskmill.history(article).count() == 1
    assert taskmill.history(token).count() == 0


def test_history__keeps_finished_tasks() -> None:
    article = Article.objects.create(title="a")
    result = tasks.noop.using(for_object=article).enqueue()
    taskmill.cancel(result.id)

    assert [record.state for record in taskmill.history(article)] == [State.CANCELLED]
