"""taskmill.retry_task: a failed or cancelled task enqueued again as a new result linked to it."""

from __future__ import annotations

import pytest
from django.tasks import TaskResultStatus
from django.tasks.exceptions import TaskResultDoesNotExist

import taskmill
from taskmill.exceptions import NotRetryable
from taskmill.models import TaskRecord
from taskmill.states import State
from tests.db import task_rows
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("state", [State.FAILED, State.CANCELLED])
def test_retry__enqueues_a_new_result_with_the_same_call(state: State) -> None:
    old = task_rows.put(tasks.add.using(priority=5).enqueue(2, 3), state, attempts=1)

    new = taskmill.retry_task(str(old.id))

    assert new.id != str(old.id)
    assert new.status == TaskResultStatus.READY
    assert (new.args, new.task.priority) == ([2, 3], 5)
    record = TaskRecord.objects.get(id=new.id)
    assert (record.retry_of_id, record.state, record.attempts) == (old.id, State.READY, 0)
    assert TaskRecord.objects.get(id=old.id).state == state  # the old result stays as it was


def test_retry__accepts_a_task_result() -> None:
    result = tasks.noop.enqueue()
    task_rows.put(result, State.FAILED)
    assert taskmill.retry_task(result).id != result.id


@pytest.mark.parametrize("state", [State.READY, State.RUNNING, State.SUCCEEDED, State.BLOCKED])
def test_retry__refuses_other_states(state: State) -> None:
    old = task_rows.put(tasks.noop.enqueue(), state)
    with pytest.raises(NotRetryable, match=f"is {state}; only failed or cancelled"):
        taskmill.retry_task(str(old.id))


def test_retry__unknown_id_raises() -> None:
    with pytest.raises(TaskResultDoesNotExist):
        taskmill.retry_task("0190c5d4-0000-7000-8000-000000000000")
    with pytest.raises(TaskResultDoesNotExist):
        taskmill.retry_task("not-an-id")


def test_retry__a_unique_task_already_queued_again_is_not_duplicated() -> None:
    old = tasks.unique_noop.enqueue(1)
    task_rows.put(old, State.FAILED, unique_key=None)
    queued = tasks.unique_noop.enqueue(1)

    again = taskmill.retry_task(old)

    assert again.id == queued.id
