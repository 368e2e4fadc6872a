"""A deferred task (run_after) in a real worker: on PostgreSQL its enqueue tells the idle
worker when it falls due, and the worker starts it then, not at its next poll."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from taskmill.models import Worker
from taskmill.worker.claim_schedule import DUE_MARGIN
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.waiting import wait_until

from .helpers import record, state_of

pytestmark = pytest.mark.django_db(transaction=True)

POLL_INTERVAL = 2.0
ENV = {"TASKMILL_TEST_SETTINGS": json.dumps({"POLL_INTERVAL": POLL_INTERVAL})}
# An idle worker's wait doubles from 0.05 s after each claim that finds nothing; 1.5 s after
# its start it is at least 1 s, and any wake-up then doubles it to POLL_INTERVAL.
BACKED_OFF_AFTER = 3.0


@pytest.mark.only_on("postgresql")
def test_a_deferred_task_starts_when_due_not_at_the_next_poll(
    worker_process: WorkerFactory,
) -> None:
    worker_process("--concurrency", "1", env=ENV)
    wait_until(Worker.objects.exists, timeout=30, message="the worker never registered")
    # Sets the scene rather than waiting for an outcome: once backed off, a worker that only
    # polled would claim POLL_INTERVAL after the enqueue woke it, a second after the task fell
    # due. However short this wait turned out, the task would start on time.
    time.sleep(BACKED_OFF_AFTER)
    run_after = timezone.now() + timedelta(seconds=1)

    result = tasks.noop.using(run_after=run_after).enqueue()

    wait_until(lambda: state_of(result.id) == "succeeded", timeout=15)
    started_at = record(result.id).started_at
    assert started_at is not None
    assert run_after <= started_at < run_after + timedelta(seconds=DUE_MARGIN + 0.5)
