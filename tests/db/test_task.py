"""Task options on the record: stored as JSON when enqueued, restored by get_result; Django's own
@task decorator making Taskmill tasks on Django 6.1."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.tasks import default_task_backend

from taskmill.models import TaskRecord
from taskmill.task import TaskmillTask
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_enqueue__options_are_stored_on_the_record() -> None:
    result = tasks.configured.enqueue(1)

    # The JSON shape itself is tests/unit/test_task.py's business; here: it is what is stored.
    assert TaskRecord.objects.get(id=result.id).options == tasks.configured.stored_options()


def test_enqueue__options_from_using_are_stored_normalised() -> None:
    result = tasks.noop.using(
        max_attempts=5,
        retry_delay=timedelta(seconds=2),
        retry_on=TimeoutError,
        timeout=timedelta(minutes=1),
        result_ttl=timedelta(hours=1),
    ).enqueue()

    options = TaskRecord.objects.get(id=result.id).options
    assert options["max_attempts"] == 5
    assert options["retry_delay"] == 2.0
    assert options["retry_on"] == ["builtins.TimeoutError"]
    assert options["timeout"] == 60.0
    assert options["result_ttl"] == 3600.0


def test_enqueue__callable_options_are_stored_by_path_and_restored() -> None:
    result = tasks.with_callables.enqueue(1)

    options = TaskRecord.objects.get(id=result.id).options
    assert options["retry_delay"] == "tests.testapp.tasks.delay_by_attempt"
    assert options["unique"] == "tests.testapp.tasks.key_of_first_argument"
    restored = default_task_backend.get_result(result.id).task
    assert isinstance(restored, TaskmillTask)
    assert restored.retry_delay is tasks.delay_by_attempt
    assert restored.unique is tasks.key_of_first_argument


@pytest.mark.requires_django("6.1")
def test_django_task_decorator__enqueues_a_taskmill_task_with_its_options() -> None:
    from django.tasks import task as django_task

    # The registered tests.testapp.tasks.noop function, decorated again by Django's decorator.
    made = django_task(max_attempts=3, queue_name="low")(tasks.noop.func)  # type: ignore[call-overload]  # 6.1 passes options on; the stubs don't know
    assert isinstance(made, TaskmillTask)

    result = made.enqueue()

    assert TaskRecord.objects.get(id=result.id).options["max_attempts"] == 3
    fetched = default_task_backend.get_result(result.id)
    assert isinstance(fetched.task, TaskmillTask)
    assert fetched.task.max_attempts == 3
    assert fetched.task.queue_name == "low"
    assert fetched == result
