"""depends_on: a task's first state from its dependencies, the links stored, failures passed on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.tasks import TaskResult, TaskResultStatus, default_task_backend
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

import taskmill
from taskmill.dependencies import dependency_failed_error, initial_state
from taskmill.exceptions import DependencyFailed
from taskmill.models import TaskDependency, TaskRecord
from taskmill.states import State
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
