"""task_finished for tasks cancelled before they ran: sent in the cancelling process once the
cancel commits, for the task and for the dependants cancelled with it; never for a cancel
that was rolled back. A receiver that raises is logged and stops nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.tasks import TaskResult
from django.tasks.signals import task_finished

import taskmill
from taskmill.finished_signal import send_task_finished
from taskmill.models import TaskRecord
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard() -> Iterator[list[TaskResult[Any, Any]]]:
    results: list[TaskResult[Any, Any]] = []

    def listen(sender: type, task_result: TaskResult[Any, Any], **kwargs: Any) -> None:
        results.append(task_result)

    task_finished.connect(listen, dispatch_uid="test_finished_signal.listen")
    yield results
    task_finished.disconnect(dispatch_uid="test_finished_signal.listen")


def test_cancelling_a_queued_task_sends_task_finished_for_it_and_its_dependants(
    heard: list[TaskResult[Any, Any]],
) -> None:
    queued = tasks.noop.enqueue()
    dependant = tasks.noop.using(depends_on=[queued]).enqueue()
    runs_anyway = tasks.noop.using(depends_on=[queued], on_dependency_failure="run").enqueue()
    assert taskmill.cancel(queued.id) is True
    assert [(r.id, r.status) for r in heard] == [
        (queued.id, "FAILED"),
        (dependant.id, "FAILED"),
    ]
    assert TaskRecord.objects.get(id=runs_anyway.id).state == "ready"


def test_task_finished_waits_for_the_callers_transaction_and_not_for_a_rollback(
    heard: list[TaskResult[Any, Any]],
) -> None:
    kept = tasks.noop.enqueue()
    undone = tasks.noop.enqueue()
    with transaction.atomic():
        taskmill.cancel(kept.id)
        assert heard == [], "sent before the cancel committed"
    assert [r.id for r in heard] == [kept.id]

    def cancel_then_fail() -> None:
        with transaction.atomic():
            taskmill.cancel(undone.id)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        cancel_then_fail()
    assert [r.id for r in heard] == [kept.id]
    assert TaskRecord.objects.get(id=undone.id).state == "ready"


def test_a_receiver_that_raises_is_logged_and_the_others_still_hear(
    heard: list[TaskResult[Any, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    after: list[str] = []

    def broken(sender: type, task_result: TaskResult[Any, Any], **kwargs: Any) -> None:
        raise ValueError("receiver bug")

    def later(sender: type, task_result: TaskResult[Any, Any], **kwargs: Any) -> None:
        after.append(task_result.id)

    # Receivers run in the order connected: `later` proves the sending went on past `broken`.
    task_finished.connect(broken, dispatch_uid="test_finished_signal.broken")
    task_finished.connect(later, dispatch_uid="test_finished_signal.later")
    try:
        result = tasks.noop.enqueue()
        assert taskmill.cancel(result.id) is True
    finally:
        task_finished.disconnect(dispatch_uid="test_finished_signal.broken")
        task_finished.disconnect(dispatch_uid="test_finished_signal.later")
    assert [r.id for r in heard] == [result.id]
    assert after == [result.id]
    (logged,) = [r for r in caplog.records if "signal receiver failed" in r.getMessage()]
    assert logged.exc_info is not None
    assert "receiver bug" in str(logged.exc_info[1])


def test_a_record_that_cannot_be_described_is_logged_and_the_rest_are_sent(
    heard: list[TaskResult[Any, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    good = tasks.noop.enqueue()
    bad = tasks.noop.enqueue()
    TaskRecord.objects.filter(id=bad.id).update(task_path="tests.testapp.tasks.gone")
    records = list(TaskRecord.objects.filter(id__in=[bad.id, good.id]).order_by("task_path"))
    send_task_finished(records)
    assert [r.id for r in heard] == [good.id]
    assert any("could not describe finished task" in r.getMessage() for r in caplog.records)
