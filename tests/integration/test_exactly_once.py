"""Claiming never hands one task to two workers: 4 worker processes, 5,000 tasks, one ledger
row per task."""

import time

import pytest
from django.db.models import Count

import taskmill
from taskmill.models import TaskRecord
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.testapp.models import LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)

TASK_COUNT = 5_000
WORKERS = 4


def test_four_workers_run_five_thousand_tasks_exactly_once(
    worker_process: WorkerFactory,
) -> None:
    keys = [f"once-{i}" for i in range(TASK_COUNT)]
    taskmill.enqueue_many(tasks.ledger_task, [((key,), {}) for key in keys])
    started = time.monotonic()
    workers = [worker_process("--burst", "--concurrency", "2") for _ in range(WORKERS)]
    for worker in workers:
        assert worker.wait(300) == 0, worker.output()
    elapsed = time.monotonic() - started

    assert LedgerEntry.objects.count() == TASK_COUNT
    duplicates = list(LedgerEntry.objects.values("key").annotate(n=Count("id")).filter(n__gt=1)[:5])
    assert duplicates == []
    assert set(LedgerEntry.objects.values_list("key", flat=True)) == set(keys)
    states = dict(TaskRecord.objects.values_list("state").annotate(n=Count("id")).order_by())
    assert states == {"succeeded": TASK_COUNT}
    assert not TaskRecord.objects.exclude(attempts=1).exists()
    served = LedgerEntry.objects.values("pid").distinct().count()
    print(f"{TASK_COUNT} tasks by {WORKERS} workers ({served} children) in {elapsed:.1f}s")  # noqa: T201 - a figure, not an assertion
    assert served > WORKERS, "the work was shared among several workers' children"
