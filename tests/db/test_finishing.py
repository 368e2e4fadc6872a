"""Batched recording (Queue.finish_many): as strongly fenced as the one-row path, in fewer
statements."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from taskmill.codec import JSON
from taskmill.models import TaskRecord
from taskmill.outcomes import AttemptError, Transition
from taskmill.queue import get_queue
from taskmill.queue.base import Queue
from taskmill.queue.finishing import Finish
from taskmill.queue.lease import ClaimRequest, Lease
from taskmill.results import StoredError
from taskmill.states import State
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queue() -> Queue:
    return get_queue("default")


def _claim(queue: Queue, worker_id: str = "w1", limit: int = 50) -> list[TaskRecord]:
    request = ClaimRequest(
        worker_id=worker_id, queue_names=("default",), limit=limit, lease_seconds=30
    )
    return queue.claim(request)


def _succeeded(record: TaskRecord, value: JSON) -> Finish:
    return Finish(
        lease=Lease.of(record),
        transition=Transition(state=State.SUCCEEDED, return_value=value),
        prior_errors=[],
    )


def test_finish_many_records_every_final_outcome_in_one_statement_where_it_can(
    queue: Queue, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    for _ in range(30):
        tasks.noop.enqueue()
    claimed = _claim(queue)
    values: list[JSON] = [None, 0, "x", {"a": [1, 2]}, [None]] * 6
    # MariaDB/MySQL have no UPDATE ... RETURNING: there the UPDATE has a transaction of its
    # own, undone should it not match every row.
    with django_assert_num_queries(3 if connection.vendor == "mysql" else 1):
        written = queue.finish_many(
            [_succeeded(r, v) for r, v in zip(claimed, values, strict=True)], now=timezone.now()
        )
    assert all(changes is not None for changes in written)
    rows = {r.id: r for r in TaskRecord.objects.all()}
    for record, value in zip(claimed, values, strict=True):
        row = rows[record.id]
        assert (row.state, row.return_value) == (State.SUCCEEDED, value)
        assert (row.lease_owner, row.lease_expires_at, row.unique_key) == (None, None, None)
        assert row.finished_at is not None
        assert row.expires_at is not None
        assert row.expires_at > row.finished_at


def test_finish_many__a_lost_lease_in_the_batch_is_not_recorded_and_the_others_are(
    queue: Queue,
) -> None:
    for _ in range(3):
        tasks.noop.enqueue()
    first, lost, last = _claim(queue)
    # Rescued and claimed again by another worker: attempt 2 belongs to w2.
    TaskRecord.objects.filter(id=lost.id).update(
        state=State.READY, lease_owner=None, run_after=timezone.now() - timedelta(seconds=1)
    )
    (again,) = _claim(queue, worker_id="w2")
    assert again.id == lost.id

    written = queue.finish_many(
        [_succeeded(first, 1), _succeeded(lost, "late"), _succeeded(last, 3)], now=timezone.now()
    )

    assert [changes is not None for changes in written] == [True, False, True]
    row = TaskRecord.objects.get(id=lost.id)
    assert (row.state, row.lease_owner, row.attempts, row.return_value) == (
        State.RUNNING,
        "w2",
        2,
        None,
    )
    assert TaskRecord.objects.get(id=last.id).return_value == 3


def test_finish_many__retries_and_tasks_with_dependants_take_the_one_row_path(
    queue: Queue,
) -> None:
    retried = tasks.noop.enqueue()
    dependency = tasks.noop.enqueue()
    dependant = tasks.noop.using(depends_on=[dependency]).enqueue()
    claimed = {str(r.id): r for r in _claim(queue)}
    later = timezone.now() + timedelta(minutes=5)
    error = AttemptError(exception_class_path="builtins.ValueError", traceback="ValueError\n")
    retry = Finish(
        lease=Lease.of(claimed[retried.id]),
        transition=Transition(state=State.READY, run_after=later, error=error),
        prior_errors=[],
    )

    written = queue.finish_many(
        [retry, _succeeded(claimed[dependency.id], None)], now=timezone.now()
    )

    assert all(changes is not None for changes in written)
    row = TaskRecord.objects.get(id=retried.id)
    assert (row.state, row.run_after) == (State.READY, later)
    assert row.errors[0]["exception_class_path"] == "builtins.ValueError"
    assert TaskRecord.objects.get(id=dependency.id).state == State.SUCCEEDED
    assert TaskRecord.objects.get(id=dependant.id).state == State.READY


def test_finish_many__writes_errors_and_times_exactly_as_the_one_row_path(
    queue: Queue,
) -> None:
    for _ in range(8):
        tasks.noop.enqueue()
    claimed = _claim(queue)
    now = timezone.now()
    error = AttemptError(exception_class_path="builtins.ValueError", traceback="Trace 'é' \\ {}")
    prior = [StoredError(exception_class_path="x.Y", traceback="earlier", attempt=0)]
    finishes = [
        Finish(
            lease=Lease.of(record),
            transition=Transition(state=State.FAILED, error=error),
            prior_errors=prior,
        )
        for record in claimed
    ]
    written = queue.finish_many(finishes[:4], now=now)
    # The one-row path, for comparison: the same changes, written by the ORM.
    single = [
        queue.finish(f.lease, f.transition, prior_errors=prior, now=now) for f in finishes[4:]
    ]

    assert written[0] == single[0]
    stored = [
        (row.state, row.errors, row.finished_at, row.expires_at, row.return_value)
        for row in TaskRecord.objects.filter(id__in=[r.id for r in claimed]).order_by("id")
    ]
    assert len(set(map(repr, stored))) == 1
    assert stored[0][1] == [
        *prior,
        {"exception_class_path": "builtins.ValueError", "traceback": error.traceback, "attempt": 1},
    ]
    assert stored[0][2] == now


def test_finish_many__values_with_quotes_backslashes_braces_and_nulls_are_stored_as_given(
    queue: Queue,
) -> None:
    # PostgreSQL binds each column as the text of an array literal: every character that
    # text treats specially must come back as it was.
    values: list[JSON] = [
        'a "quoted" word',
        'back\\slash \\" and \\\\',
        "{braces}, commas, NULL",
        "NULL",
        "line\nbreak\ttab é ☃",
        {"k": '"}{,\\'},
        ["", None, "null"],
    ]
    for _ in values:
        tasks.noop.enqueue()
    claimed = _claim(queue)

    written = queue.finish_many(
        [_succeeded(r, v) for r, v in zip(claimed, values, strict=True)], now=timezone.now()
    )

    assert all(changes is not None for changes in written)
    rows = {r.id: r for r in TaskRecord.objects.all()}
    assert [rows[r.id].return_value for r in claimed] == values


def test_finish_many__tells_the_worker_once_that_it_made_dependants_ready(
    queue: Queue,
) -> None:
    dependency = tasks.noop.enqueue()
    tasks.noop.using(depends_on=[dependency]).enqueue()
    lonely = tasks.noop.enqueue()
    claimed = {str(r.id): r for r in _claim(queue)}
    assert set(claimed) == {dependency.id, lonely.id}  # the dependant is blocked
    queue.take_made_ready()  # the queue object is shared: forget other tests' news

    queue.finish_many([_succeeded(claimed[lonely.id], None)], now=timezone.now())
    assert queue.take_made_ready() is False

    queue.finish_many([_succeeded(claimed[dependency.id], None)], now=timezone.now())
    # Its own waiter may not see this write: the worker claims at once instead.
    assert queue.take_made_ready() is True
    assert queue.take_made_ready() is False
