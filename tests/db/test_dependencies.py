"""depends_on: a task's first state from its dependencies, the links stored, failures passed on."""

from __future__ import annotations

import uuid
from typing import Any, Final

import pytest
from django.db import transaction
from django.tasks import TaskResult, TaskResultStatus, default_task_backend
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

import taskmill
from taskmill.dependencies import dependency_failed_error, initial_state
from taskmill.exceptions import DependencyFailed
from taskmill.models import TaskDependency, TaskRecord
from taskmill.queue import get_queue
from taskmill.states import State
from taskmill.testing import run_until_empty
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

DEPENDENCY_FAILED = "taskmill.exceptions.DependencyFailed"


def set_state(result: TaskResult[..., Any], state: State) -> None:
    """Put a result's row in a state by hand, as a worker would have."""
    fields: dict[str, object] = {"state": state}
    if state in (State.SUCCEEDED, State.FAILED, State.CANCELLED):
        fields.update(finished_at=timezone.now(), unique_key=None)
    assert TaskRecord.objects.filter(id=result.id).update(**fields) == 1


def record_of(result: TaskResult[..., Any]) -> TaskRecord:
    return TaskRecord.objects.get(id=result.id)


def dependency_ids_of(result: TaskResult[..., Any]) -> set[str]:
    links = TaskDependency.objects.filter(dependant_id=uuid.UUID(result.id))
    return {str(dependency_id) for dependency_id in links.values_list("dependency_id", flat=True)}


# --- the first state ----------------------------------------------------------------------


def test_depends_on__all_dependencies_succeeded_makes_the_task_ready() -> None:
    first, second = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(first, State.SUCCEEDED)
    set_state(second, State.SUCCEEDED)

    dependant = tasks.add.using(depends_on=[first, second]).enqueue(1, 2)

    assert record_of(dependant).state == State.READY
    assert dependant.status == TaskResultStatus.READY
    assert dependency_ids_of(dependant) == {first.id, second.id}


@pytest.mark.parametrize("active", [State.READY, State.RUNNING, State.BLOCKED])
def test_depends_on__one_active_dependency_blocks_the_task(active: State) -> None:
    done, pending = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(done, State.SUCCEEDED)
    set_state(pending, active)

    dependant = tasks.noop.using(depends_on=[done, pending]).enqueue()

    assert record_of(dependant).state == State.BLOCKED
    # Django has no blocked status: a blocked task is still waiting to run.
    assert default_task_backend.get_result(dependant.id).status == TaskResultStatus.READY
    assert dependency_ids_of(dependant) == {done.id, pending.id}


@pytest.mark.parametrize("failed", [State.FAILED, State.CANCELLED])
def test_depends_on__a_failed_dependency_cancels_the_task_with_dependency_failed(
    failed: State,
) -> None:
    done, broken = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(done, State.SUCCEEDED)
    set_state(broken, failed)

    dependant = tasks.noop.using(depends_on=[done, broken]).enqueue()

    record = record_of(dependant)
    assert record.state == State.CANCELLED
    assert record.finished_at is not None
    assert record.unique_key is None
    fetched = default_task_backend.get_result(dependant.id)
    assert fetched.status == TaskResultStatus.FAILED
    assert dependant.status == TaskResultStatus.FAILED
    (error,) = fetched.errors
    assert error.exception_class_path == DEPENDENCY_FAILED
    assert error.exception_class is DependencyFailed
    assert broken.id in error.traceback
    assert f"ended {failed.value}" in error.traceback


def test_depends_on__accepts_result_ids_as_well_as_results() -> None:
    dependency = tasks.noop.enqueue()

    by_id = tasks.noop.using(depends_on=[dependency.id]).enqueue()
    by_upper_id = tasks.noop.using(depends_on=dependency.id.upper()).enqueue()
    by_result = tasks.noop.using(depends_on=dependency).enqueue()

    for dependant in (by_id, by_upper_id, by_result):
        assert record_of(dependant).state == State.BLOCKED
        assert dependency_ids_of(dependant) == {dependency.id}


def test_depends_on__no_dependencies_means_ready() -> None:
    result = tasks.noop.using(depends_on=[]).enqueue()

    assert record_of(result).state == State.READY
    assert not TaskDependency.objects.exists()


@pytest.mark.parametrize("missing", [str(uuid.uuid4()), "123", ""])
def test_depends_on__unknown_dependency_raises_does_not_exist_and_stores_nothing(
    missing: str,
) -> None:
    known = tasks.noop.enqueue()

    with pytest.raises(TaskResultDoesNotExist) as caught:
        tasks.noop.using(depends_on=[known, missing]).enqueue()

    assert (missing or "''") in str(caught.value)

    assert list(TaskRecord.objects.values_list("id", flat=True)) == [uuid.UUID(known.id)]
    assert not TaskDependency.objects.exists()


def test_depends_on__result_of_dependant_equals_get_result() -> None:
    dependency = tasks.noop.enqueue()

    dependant = tasks.noop.using(depends_on=[dependency]).enqueue()

    assert default_task_backend.get_result(dependant.id) == dependant


def test_depends_on__enqueue_many_links_every_call() -> None:
    dependency = tasks.noop.enqueue()

    results = taskmill.enqueue_many(
        tasks.add.using(depends_on=[dependency]), [((1, 1), {}), ((2, 2), {})]
    )

    for result in results:
        assert record_of(result).state == State.BLOCKED
        assert dependency_ids_of(result) == {dependency.id}


def test_depends_on__de_duplicated_unique_task_keeps_its_first_dependencies() -> None:
    first_dependency, second_dependency = tasks.noop.enqueue(), tasks.noop.enqueue()
    first = tasks.unique_noop.using(depends_on=[first_dependency]).enqueue(1)

    again = tasks.unique_noop.using(depends_on=[second_dependency]).enqueue(1)

    assert again.id == first.id
    assert dependency_ids_of(first) == {first_dependency.id}


# --- cancelling passes on to dependants ---------------------------------------------------


def test_cancel__cancelling_a_dependency_cancels_its_blocked_dependant() -> None:
    dependency = tasks.noop.enqueue()
    dependant = tasks.noop.using(depends_on=[dependency]).enqueue()

    assert taskmill.cancel(dependency.id) is True

    record = record_of(dependant)
    assert record.state == State.CANCELLED
    assert record.finished_at is not None
    (error,) = default_task_backend.get_result(dependant.id).errors
    assert error.exception_class_path == DEPENDENCY_FAILED
    assert dependency.id in error.traceback
    assert "ended cancelled" in error.traceback


def test_cancel__cancelling_the_head_of_a_chain_cancels_the_whole_chain() -> None:
    head = tasks.noop.enqueue()
    middle = tasks.noop.using(depends_on=[head]).enqueue()
    tail = tasks.noop.using(depends_on=[middle]).enqueue()
    unrelated = tasks.noop.enqueue()

    taskmill.cancel(head.id)

    assert [record_of(result).state for result in (head, middle, tail)] == [State.CANCELLED] * 3
    assert middle.id in default_task_backend.get_result(tail.id).errors[0].traceback
    assert record_of(unrelated).state == State.READY


def test_cancel__dependant_waiting_on_others_too_is_cancelled() -> None:
    cancelled, pending = tasks.noop.enqueue(), tasks.noop.enqueue()
    dependant = tasks.noop.using(depends_on=[cancelled, pending]).enqueue()

    taskmill.cancel(cancelled.id)

    assert record_of(dependant).state == State.CANCELLED
    assert record_of(pending).state == State.READY


def test_cancel__a_unique_dependant_cancelled_frees_its_key() -> None:
    dependency = tasks.noop.enqueue()
    dependant = tasks.unique_noop.using(depends_on=[dependency]).enqueue(1)

    taskmill.cancel(dependency.id)

    assert record_of(dependant).unique_key is None
    assert tasks.unique_noop.enqueue(1).id != dependant.id


# --- initial_state on its own -------------------------------------------------------------


def unsaved(state: State) -> TaskRecord:
    return TaskRecord(task_path="tests.testapp.tasks.noop", state=state, attempts=0)


def test_initial_state__ready_when_every_dependency_succeeded() -> None:
    record = unsaved(State.READY)

    assert initial_state(record, [unsaved(State.SUCCEEDED), unsaved(State.SUCCEEDED)]) == (
        State.READY
    )
    assert record.errors == []


def test_initial_state__blocked_while_any_dependency_is_active() -> None:
    record = unsaved(State.READY)

    assert initial_state(record, [unsaved(State.SUCCEEDED), unsaved(State.RUNNING)]) == (
        State.BLOCKED
    )
    assert record.errors == []


def test_initial_state__cancelled_with_an_error_when_one_failed() -> None:
    record = unsaved(State.READY)
    record.unique_key = "key"
    failed = unsaved(State.FAILED)

    assert initial_state(record, [unsaved(State.RUNNING), failed]) == State.CANCELLED
    assert record.errors == [dependency_failed_error(failed, 0)]
    assert record.unique_key is None
    assert record.finished_at is not None


def test_dependency_failed_error__names_the_dependency_and_its_state() -> None:
    failed = unsaved(State.FAILED)

    entry = dependency_failed_error(failed, 2)

    assert entry["exception_class_path"] == DEPENDENCY_FAILED
    assert f"dependency {failed.id} (tests.testapp.tasks.noop) ended failed" in entry["traceback"]
    assert entry["attempt"] == 2


# --- on_dependency_failure="run" ----------------------------------------------------------


def finish(result: TaskResult[..., Any], state: State) -> None:
    """Finish a result's row by hand and settle its dependants, as a worker's finish would."""
    set_state(result, state)
    with transaction.atomic():
        get_queue("default").graph.settle(record_of(result))


def test_run_policy__a_dependency_failed_before_the_enqueue_makes_the_task_ready() -> None:
    done, broken = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(done, State.SUCCEEDED)
    set_state(broken, State.FAILED)

    dependant = tasks.noop.using(depends_on=[done, broken], on_dependency_failure="run").enqueue()

    record = record_of(dependant)
    assert record.state == State.READY
    assert record.errors == []
    assert record.finished_at is None


def test_run_policy__waits_while_a_dependency_is_active() -> None:
    broken, pending = tasks.noop.enqueue(), tasks.noop.enqueue()
    set_state(broken, State.CANCELLED)

    dependant = tasks.noop.using(
        depends_on=[broken, pending], on_dependency_failure="run"
    ).enqueue()

    assert record_of(dependant).state == State.BLOCKED


def test_run_policy__runs_after_one_dependency_failed_and_the_other_succeeded() -> None:
    ok, broken = tasks.noop.enqueue(), tasks.fail_value_error.enqueue()
    dependant = tasks.add.using(depends_on=[ok, broken], on_dependency_failure="run").enqueue(2, 3)

    run_until_empty()

    assert record_of(broken).state == State.FAILED
    dependant.refresh()
    assert dependant.status == TaskResultStatus.SUCCESSFUL
    assert dependant.return_value == 5
    assert dependant.errors == []


def test_run_policy__a_failing_dependency_leaves_the_task_blocked_until_the_last_finishes() -> None:
    broken, pending = tasks.noop.enqueue(), tasks.noop.enqueue()
    dependant = tasks.noop.using(
        depends_on=[broken, pending], on_dependency_failure="run"
    ).enqueue()

    finish(broken, State.FAILED)
    assert record_of(dependant).state == State.BLOCKED

    finish(pending, State.CANCELLED)
    assert record_of(dependant).state == State.READY


def test_run_policy__cancelling_a_dependency_does_not_cancel_the_task() -> None:
    dependency = tasks.noop.enqueue()
    dependant = tasks.noop.using(depends_on=[dependency], on_dependency_failure="run").enqueue()

    taskmill.cancel(dependency)

    record = record_of(dependant)
    assert record.state == State.READY
    assert record.errors == []


def test_mixed_policies__one_failure_cancels_one_dependant_and_releases_the_other() -> None:
    dependency = tasks.noop.enqueue()
    cancelled = tasks.noop.using(depends_on=[dependency]).enqueue()
    runs = tasks.noop.using(depends_on=[dependency], on_dependency_failure="run").enqueue()
    downstream = tasks.noop.using(depends_on=[cancelled], on_dependency_failure="run").enqueue()

    finish(dependency, State.FAILED)

    assert record_of(cancelled).state == State.CANCELLED
    assert record_of(runs).state == State.READY
    # The chain goes on past a cancelled dependant: its own "run" dependant is released.
    assert record_of(downstream).state == State.READY


def test_mixed_policies__success_releases_both() -> None:
    dependency = tasks.noop.enqueue()
    default = tasks.noop.using(depends_on=[dependency]).enqueue()
    runs = tasks.noop.using(depends_on=[dependency], on_dependency_failure="run").enqueue()

    finish(dependency, State.SUCCEEDED)

    assert [record_of(r).state for r in (default, runs)] == [State.READY, State.READY]


def test_cancel_policy__rows_stored_without_the_option_are_cancelled() -> None:
    dependency = tasks.noop.enqueue()
    dependant = tasks.noop.using(depends_on=[dependency]).enqueue()
    record = record_of(dependant)
    del record.options["on_dependency_failure"]
    record.save(update_fields=["options"])

    finish(dependency, State.FAILED)

    assert record_of(dependant).state == State.CANCELLED


# --- fan-in ---------------------------------------------------------------------------------

FAN_IN: Final = 300


@pytest.mark.parametrize("policy", ["cancel", "run"])
def test_fan_in__the_last_of_300_dependencies_releases_the_task_in_a_few_queries(
    policy: str, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    dependencies = taskmill.enqueue_many(tasks.noop, [((), {})] * FAN_IN)
    with django_assert_max_num_queries(12):
        dependant = tasks.noop.using(
            depends_on=dependencies, on_dependency_failure=policy
        ).enqueue()
    assert len(dependency_ids_of(dependant)) == FAN_IN
    *first, last = dependencies
    TaskRecord.objects.filter(id__in=[r.id for r in first]).update(
        state=State.SUCCEEDED, finished_at=timezone.now()
    )

    set_state(last, State.SUCCEEDED)
    # Counted with the savepoint and, on PostgreSQL, the NOTIFY: flat in the fan-in width.
    with django_assert_max_num_queries(10), transaction.atomic():
        get_queue("default").graph.settle(record_of(last))

    assert record_of(dependant).state == State.READY


def test_fan_in__run_policy_with_one_failure_among_300_runs_after_the_last() -> None:
    dependencies = taskmill.enqueue_many(tasks.noop, [((), {})] * FAN_IN)
    dependant = tasks.noop.using(depends_on=dependencies, on_dependency_failure="run").enqueue()
    broken, *middle, last = dependencies
    TaskRecord.objects.filter(id__in=[r.id for r in middle]).update(
        state=State.SUCCEEDED, finished_at=timezone.now()
    )

    finish(broken, State.FAILED)
    assert record_of(dependant).state == State.BLOCKED
    finish(last, State.SUCCEEDED)

    assert record_of(dependant).state == State.READY


def test_fan_in__300_dependencies_finished_before_the_enqueue_count() -> None:
    dependencies = taskmill.enqueue_many(tasks.noop, [((), {})] * FAN_IN)
    TaskRecord.objects.filter(id__in=[r.id for r in dependencies]).update(
        state=State.SUCCEEDED, finished_at=timezone.now()
    )

    dependant = tasks.noop.using(depends_on=dependencies).enqueue()

    assert record_of(dependant).state == State.READY


def test_initial_state__run_policy_is_ready_when_every_dependency_finished() -> None:
    record = unsaved(State.READY)
    record.options = {"on_dependency_failure": "run"}

    assert initial_state(record, [unsaved(State.FAILED), unsaved(State.SUCCEEDED)]) == State.READY
    assert initial_state(record, [unsaved(State.FAILED), unsaved(State.READY)]) == State.BLOCKED
    assert record.errors == []
