"""Rows a worker can't run as they stand fail alone, with a readable error; the worker goes on."""

import pytest

from taskmill.models import TaskRecord
from tests.processes import WorkerFactory
from tests.testapp import tasks

from .helpers import error_paths, record, state_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_undecodable_arguments_fail_that_task_only(worker_process: WorkerFactory) -> None:
    wrong_shape = tasks.add.enqueue(1, 2)
    TaskRecord.objects.filter(id=wrong_shape.id).update(args={"a": 1})
    bad_reference = tasks.title_of.enqueue(0)
    TaskRecord.objects.filter(id=bad_reference.id).update(
        args=[{"__taskmill_model__": "nosuchapp.model", "pk": 1}]
    )
    good = tasks.add.enqueue(2, 2)
    assert worker_process("--burst").wait(60) == 0
    assert error_paths(wrong_shape.id) == ["builtins.ValueError"]
    assert "Stored args must be a JSON list" in record(wrong_shape.id).errors[0]["traceback"]
    assert error_paths(bad_reference.id) == ["builtins.LookupError"]
    assert "nosuchapp" in record(bad_reference.id).errors[0]["traceback"]
    assert state_of(good.id) == "succeeded"


def test_task_exhausting_memory_fails_alone(worker_process: WorkerFactory) -> None:
    greedy = tasks.exhaust_memory.enqueue()
    after = tasks.add.enqueue(3, 4)
    assert worker_process("--burst", "--concurrency", "1").wait(60) == 0
    assert error_paths(greedy.id) == ["builtins.MemoryError"]
    assert state_of(after.id) == "succeeded"
    assert record(after.id).return_value == 7
