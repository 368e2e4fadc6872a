"""The scheduler in real worker processes: several workers, one schedule due every second; each
due time is enqueued exactly once, across a kill -9 of the leader too."""

import json
import signal
from datetime import UTC, datetime, timedelta

import pytest

from taskmill.models import Leadership, Schedule, TaskRecord
from tests.processes import WorkerFactory, WorkerProcess
from tests.testapp.models import LedgerEntry
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SCHEDULE_NAME = "every-second"
SETTINGS = {
    "LEASE_SECONDS": 2,
    "HEARTBEAT_SECONDS": 0.5,
    "SCHEDULE": {
        SCHEDULE_NAME: {
            "task": "tests.testapp.tasks.ledger_task",
            "every": 1,
            "args": ["tick"],
            "start_now": True,
        }
    },
}
ENV = {"TASKMILL_TEST_SETTINGS": json.dumps(SETTINGS)}


def due_times() -> list[datetime]:
    return [
        due
        for due in TaskRecord.objects.filter(schedule__name=SCHEDULE_NAME)
        .order_by("scheduled_for")
        .values_list("scheduled_for", flat=True)
        if due is not None
    ]


def assert_each_second_once(found: list[datetime]) -> None:
    """The due times are consecutive seconds: none lost, none twice."""
    assert found, "no run was enqueued"
    expected = [found[0] + timedelta(seconds=k) for k in range(len(found))]
    assert found == expected, f"gaps or duplicates in {[d.isoformat() for d in found]}"


def leader_pid() -> int | None:
    row = Leadership.objects.filter(name="leader:default").first()
    return int(row.worker_id.split(":")[1]) if row is not None else None


def start(worker_process: WorkerFactory) -> WorkerProcess:
    return worker_process("--concurrency", "1", env=ENV)


def test_three_workers_enqueue_each_due_time_exactly_once(
    worker_process: WorkerFactory,
) -> None:
    workers = [start(worker_process) for _ in range(3)]

    wait_until(
        lambda: (
            TaskRecord.objects.filter(schedule__name=SCHEDULE_NAME, state="succeeded").count() >= 6
        ),
        timeout=40,
        message=lambda: f"6 scheduled runs done; due times so far: {len(due_times())}",
    )
    for worker in workers:
        worker.send(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(20) == 0

    assert_each_second_once(due_times())
    logs = "".join(worker.output() for worker in workers)
    # The compare-and-set did the work: the unique constraint never had to refuse a run.
    assert "already enqueued" not in logs
    assert logs.count("schedule enqueued") == len(due_times())
    assert logs.count("schedule added") == 1
    succeeded = TaskRecord.objects.filter(schedule__name=SCHEDULE_NAME, state="succeeded")
    assert LedgerEntry.objects.filter(key="tick").count() == succeeded.count()
    row = Schedule.objects.get(name=SCHEDULE_NAME)
    assert row.last_due_at == due_times()[-1]


def test_kill_9_of_the_leader_loses_and_duplicates_no_due_time(
    worker_process: WorkerFactory,
) -> None:
    first = start(worker_process)
    wait_until(lambda: leader_pid() == first.pid, timeout=30, message="the first worker leading")
    second = start(worker_process)
    wait_until(lambda: len(due_times()) >= 3, timeout=30, message="3 runs under the first leader")

    first.send_group(signal.SIGKILL)
    first.wait(10)
    killed_at = due_times()[-1]
    wait_until(lambda: leader_pid() == second.pid, timeout=30, message="the second worker leading")
    wait_until(
        lambda: len([d for d in due_times() if d > killed_at]) >= 5,
        timeout=30,
        message="5 runs after the fail-over",
    )
    second.send(signal.SIGTERM)
    assert second.wait(20) == 0

    assert_each_second_once(due_times())
    # Due times that came while nobody led were enqueued late, by the new leader, once each.
    # The lease outlives the last renewal by at least 2 - 0.67 s, so one is >= 0.33 s late.
    late = [
        record
        for record in TaskRecord.objects.filter(schedule__name=SCHEDULE_NAME)
        if record.scheduled_for is not None
        and record.enqueued_at - record.scheduled_for > timedelta(seconds=0.3)
    ]
    assert late, "the fail-over left no due time to catch up"
    assert "became leader" in second.output()
    assert "already enqueued" not in second.output()


def test_the_leader_prunes_expired_results(worker_process: WorkerFactory) -> None:
    from tests.testapp.tasks import noop

    result = noop.enqueue()
    TaskRecord.objects.filter(id=result.id).update(
        state="succeeded",
        finished_at=datetime(2020, 1, 1, tzinfo=UTC),
        expires_at=datetime(2020, 1, 2, tzinfo=UTC),
    )

    worker_process("--concurrency", "1")

    wait_until(
        lambda: not TaskRecord.objects.filter(id=result.id).exists(),
        timeout=30,
        message="the expired result pruned",
    )
