"""Due times and leases are compared with the database server's clock, in SQL: a worker host
whose clock is wrong (simulated by moving this process's clock a day ahead) neither claims a
task early nor rescues a task whose lease is still running.

Server databases only: a SQLite file is on the worker's own host, whose clock it shares.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from taskmill.models import TaskRecord
from taskmill.queue import get_queue
from taskmill.queue.base import Queue
from taskmill.queue.clock import read_database_now
from taskmill.queue.lease import ClaimRequest
from taskmill.states import State
from tests.testapp import tasks

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.only_on("postgresql", "mysql"),
]

SKEW = timedelta(days=1)


@pytest.fixture
def queue() -> Queue:
    return get_queue(DEFAULT_DB_ALIAS)


@contextmanager
def clock_a_day_ahead() -> Iterator[None]:
    """Move timezone.now() of this process a day ahead; the database's clock stays."""
    real_now = timezone.now
    with mock.patch("django.utils.timezone.now", side_effect=lambda: real_now() + SKEW):
        yield


def _claim(queue: Queue) -> list[TaskRecord]:
    return queue.claim(
        ClaimRequest(worker_id="w1", queue_names=("default",), limit=10, lease_seconds=30)
    )


def test_a_task_due_in_an_hour_is_not_claimed_by_a_host_a_day_ahead(queue: Queue) -> None:
    later = tasks.noop.using(run_after=timedelta(hours=1)).enqueue()
    due = tasks.noop.enqueue()
    with clock_a_day_ahead():
        claimed = _claim(queue)
    assert [str(record.id) for record in claimed] == [due.id]
    assert TaskRecord.objects.get(id=later.id).state == State.READY


def test_a_lease_runs_on_the_database_clock_and_is_not_rescued_by_a_host_a_day_ahead(
    queue: Queue,
) -> None:
    tasks.noop.enqueue()
    with clock_a_day_ahead():
        (claimed,) = _claim(queue)
        rescued = queue.rescue_expired()
    assert rescued == []
    row = TaskRecord.objects.get(id=claimed.id)
    assert row.state == State.RUNNING
    assert row.lease_expires_at is not None
    # Thirty seconds after the database's now, not after this process's (a day ahead).
    lease_left = row.lease_expires_at - read_database_now(DEFAULT_DB_ALIAS)
    assert timedelta(0) < lease_left <= timedelta(seconds=30)
