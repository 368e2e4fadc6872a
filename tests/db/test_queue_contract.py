"""The Queue contract, written once against the interface and run on every database."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connections, transaction
from django.utils import timezone

import taskmill
from taskmill.models import TaskRecord, Worker
from taskmill.outcomes import AttemptError, Transition
from taskmill.queue import get_queue
from taskmill.queue.base import Queue
from taskmill.queue.lease import ClaimRequest, Lease
from taskmill.states import State
from tests.lock_waits import in_other_session
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

QUEUES = ("default", "reports", "low")


@pytest.fixture
def queue() -> Queue:
    return get_queue("default")


def _request(worker_id: str = "w1", limit: int = 10, lease: float = 30.0) -> ClaimRequest:
    return ClaimRequest(
        worker_id=worker_id,
        queue_names=QUEUES,
        limit=limit,
        lease_seconds=lease,
    )


def test_claim_takes_due_tasks_highest_priority_first_and_leases_them(queue: Queue) -> None:
    low = tasks.noop.using(priority=-5).enqueue()
    high = tasks.noop.using(priority=5).enqueue()
    later = tasks.noop.using(run_after=timedelta(hours=1)).enqueue()
    claimed = queue.claim(_request(limit=10))
    assert [str(r.id) for r in claimed] == [high.id, low.id]
    for record in claimed:
        assert record.state == State.RUNNING
        assert record.attempts == 1
        assert record.worker_ids == ["w1"]
        assert record.lease_owner == "w1"
        assert record.lease_expires_at is not None
        assert record.started_at is not None
    assert TaskRecord.objects.get(id=later.id).state == State.READY


def test_claim__equal_priority_is_first_in_first_out(queue: Queue) -> None:
    single = [tasks.noop.enqueue().id for _ in range(5)]
    bulk = [result.id for result in taskmill.enqueue_many(tasks.noop, [((), {})] * 20)]
    after = tasks.noop.enqueue().id
    order: list[str] = []
    while claimed := queue.claim(_request(limit=1)):
        order.extend(str(record.id) for record in claimed)
    assert order == [*single, *bulk, after]


def test_claim_respects_limit_and_queues(queue: Queue) -> None:
    for _ in range(3):
        tasks.noop.enqueue()
    report = tasks.build_report.enqueue(1)
    request = ClaimRequest(worker_id="w1", queue_names=("default",), limit=2, lease_seconds=30)
    assert len(queue.claim(request)) == 2
    assert len(queue.claim(request)) == 1
    assert queue.claim(request) == []
    assert TaskRecord.objects.get(id=report.id).state == State.READY


def test_concurrent_claimers_never_get_the_same_task(queue: Queue) -> None:
    for _ in range(60):
        tasks.noop.enqueue()
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def claim_all(worker_id: str) -> None:
        got: list[str] = []
        try:
            while batch := queue.claim(_request(worker_id=worker_id, limit=3)):
                got.extend(str(r.id) for r in batch)
        except BaseException as error:  # collected and asserted below
            errors.append(error)
        finally:
            claimed[worker_id] = got
            connections.close_all()

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    every = [task_id for got in claimed.values() for task_id in got]
    assert len(every) == 60
    assert len(set(every)) == 60


def _final(return_value: Any = None) -> Transition:
    return Transition(state=State.SUCCEEDED, return_value=return_value)


def test_finish_records_the_outcome_for_the_lease_holder(queue: Queue) -> None:
    result = tasks.add.enqueue(1, 2)
    (record,) = queue.claim(_request())
    written = queue.finish(Lease.of(record), _final(3), prior_errors=[], now=timezone.now())
    assert written is not None
    row = TaskRecord.objects.get(id=result.id)
    assert row.state == State.SUCCEEDED
    assert row.return_value == 3
    assert row.lease_owner is None
    assert row.expires_at is not None
    assert row.finished_at is not None


def test_finish__lease_lost_leaves_record_untouched(queue: Queue) -> None:
    tasks.noop.enqueue()
    (record,) = queue.claim(_request())
    stale = Lease.of(record)
    # Another worker's rescue and re-claim moved the task to attempt 2.
    TaskRecord.objects.filter(id=record.id).update(
        state=State.READY, lease_owner=None, run_after=timezone.now() - timedelta(seconds=1)
    )
    (again,) = queue.claim(_request(worker_id="w2"))
    assert again.attempts == 2
    assert queue.finish(stale, _final("late"), prior_errors=[], now=timezone.now()) is None
    row = TaskRecord.objects.get(id=record.id)
    assert row.state == State.RUNNING
    assert row.lease_owner == "w2"
    assert row.return_value is None


def test_finish__lease_lost_logs_the_refused_outcome_with_its_error(
    queue: Queue, caplog: pytest.LogCaptureFixture
) -> None:
    tasks.noop.enqueue()
    (record,) = queue.claim(_request())
    TaskRecord.objects.filter(id=record.id).update(lease_owner="w2")
    error = AttemptError(exception_class_path="builtins.ValueError", traceback="ValueError: x\n")
    failed = Transition(state=State.FAILED, error=error)
    with caplog.at_level(logging.WARNING, logger="taskmill.queue.base"):
        assert queue.finish(Lease.of(record), failed, prior_errors=[], now=timezone.now()) is None
    assert f"lease lost task_id={record.id}" in caplog.text
    assert "state=failed error=builtins.ValueError: not recorded" in caplog.text


def test_finish_with_retry_puts_the_task_back_with_its_error(queue: Queue) -> None:
    tasks.noop.enqueue()
    (record,) = queue.claim(_request())
    later = timezone.now() + timedelta(minutes=5)
    error = AttemptError(exception_class_path="builtins.ValueError", traceback="ValueError: x\n")
    transition = Transition(state=State.READY, run_after=later, error=error)
    assert queue.finish(Lease.of(record), transition, prior_errors=[], now=timezone.now())
    row = TaskRecord.objects.get(id=record.id)
    assert row.state == State.READY
    assert row.run_after == later
    assert row.errors == [
        {
            "exception_class_path": "builtins.ValueError",
            "traceback": "ValueError: x\n",
            "attempt": 1,
        }
    ]
    assert queue.claim(_request()) == []


def test_release_hands_the_task_back_without_using_an_attempt(queue: Queue) -> None:
    tasks.noop.enqueue()
    (record,) = queue.claim(_request())
    assert queue.release(Lease.of(record), prior_worker_ids=[])
    row = TaskRecord.objects.get(id=record.id)
    assert row.state == State.READY
    assert row.attempts == 0
    assert row.worker_ids == []
    assert row.handed_back == [], "an attempt that never started leaves no note"
    (again,) = queue.claim(_request(worker_id="w2"))
    assert again.attempts == 1
    assert again.worker_ids == ["w2"]


def test_release__a_started_attempt_is_noted_though_not_counted(queue: Queue) -> None:
    tasks.noop.enqueue()
    (first,) = queue.claim(_request(worker_id="w1"))
    assert queue.release(Lease.of(first), prior_worker_ids=[], started=True)
    (second,) = queue.claim(_request(worker_id="w2"))
    assert queue.release(
        Lease.of(second), prior_worker_ids=[], started=True, prior_handed_back=second.handed_back
    )
    row = TaskRecord.objects.get(id=first.id)
    assert (row.state, row.attempts, row.worker_ids) == (State.READY, 0, [])
    assert [(note["attempt"], note["worker_id"]) for note in row.handed_back] == [
        (1, "w1"),
        (1, "w2"),
    ]
    stamped = [datetime.fromisoformat(note["handed_back_at"]) for note in row.handed_back]
    assert all(timezone.now() - at < timedelta(minutes=1) for at in stamped)


def test_heartbeat_extends_only_the_workers_own_leases(queue: Queue) -> None:
    tasks.noop.enqueue()
    tasks.noop.enqueue()
    (mine,) = queue.claim(_request(worker_id="w1", limit=1, lease=5))
    (theirs,) = queue.claim(_request(worker_id="w2", limit=1, lease=5))
    assert queue.heartbeat("w1", lease_seconds=600) == 1
    rows = {r.lease_owner: r.lease_expires_at for r in TaskRecord.objects.all()}
    assert rows["w1"] is not None
    assert rows["w2"] is not None
    assert rows["w1"] - rows["w2"] > timedelta(minutes=9)
    assert {mine.id, theirs.id} == set(TaskRecord.objects.values_list("id", flat=True))


def test_rescue_expired_retries_with_attempts_left_and_fails_without(queue: Queue) -> None:
    retried = tasks.noop.using(max_attempts=2).enqueue()
    failed = tasks.noop.enqueue()
    queue.claim(_request(lease=0.001))
    TaskRecord.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    rescued = dict(queue.rescue_expired())
    assert {str(k): v for k, v in rescued.items()} == {
        retried.id: State.READY,
        failed.id: State.FAILED,
    }
    for result_id in (retried.id, failed.id):
        row = TaskRecord.objects.get(id=result_id)
        assert row.errors[-1]["exception_class_path"] == "taskmill.exceptions.WorkerLost"
        assert row.lease_owner is None


def test_rescue_expired_leaves_live_leases_alone(queue: Queue) -> None:
    tasks.noop.enqueue()
    queue.claim(_request(lease=600))
    assert queue.rescue_expired() == []
    assert TaskRecord.objects.get().state == State.RUNNING


# A worker stalled inside a transaction (SIGSTOP, swap, a frozen VM) must hold no lock another
# worker's loop waits on: its heartbeat and rescue pass run in the same loop as everything
# else. On MariaDB a rescue pass once locked the first live running row past the expired ones,
# stopping every other worker's heartbeat, and so its rescues, for as long as it was stalled
# (tests/integration/test_shutdown_and_rescue.py's paused worker). SQLite locks the whole file.
@pytest.mark.only_on("postgresql", "mysql")
def test_rescue_expired__a_stalled_rescue_pass_holds_up_no_live_lease(queue: Queue) -> None:
    tasks.noop.enqueue()
    queue.claim(_request(worker_id="live", limit=1, lease=600))
    # Its transactions left open, as if it stalled before COMMIT.
    with transaction.atomic():
        assert queue.rescue_expired() == []
        assert queue.fail_unknown_states() == []
        assert in_other_session(lambda: queue.heartbeat("live", lease_seconds=30)) == 1
        assert in_other_session(queue.rescue_expired) == []


@pytest.mark.only_on("postgresql", "mysql")
def test_rescue_expired__a_stalled_rescue_holds_only_the_rows_it_rescues(queue: Queue) -> None:
    tasks.noop.enqueue()
    tasks.noop.enqueue()
    queue.claim(_request(worker_id="gone", limit=1, lease=600))
    queue.claim(_request(worker_id="live", limit=1, lease=600))
    TaskRecord.objects.filter(lease_owner="gone").update(
        lease_expires_at=timezone.now() - timedelta(seconds=5)
    )
    with transaction.atomic():
        assert len(queue.rescue_expired()) == 1
        assert in_other_session(lambda: queue.heartbeat("live", lease_seconds=30)) == 1
        # The other rescuers skip the row being rescued; they don't wait for it.
        assert in_other_session(queue.rescue_expired) == []


@pytest.mark.only_on("postgresql", "mysql")
def test_forget_dead_workers__a_stalled_pass_holds_up_no_other(queue: Queue) -> None:
    queue.register_worker(Worker(id="live", backend="default", host="h", pid=1, concurrency=1))
    with transaction.atomic():
        assert queue.forget_dead_workers(timedelta(hours=1)) == 0
        assert in_other_session(lambda: queue.forget_dead_workers(timedelta(hours=1))) == 0
        assert in_other_session(lambda: queue.heartbeat("live", lease_seconds=30)) == 0


def test_cancel_requests_lists_only_the_workers_flagged_tasks(queue: Queue) -> None:
    flagged = tasks.noop.enqueue()
    tasks.noop.enqueue()
    queue.claim(_request(worker_id="w1"))
    assert queue.cancel_requests("w1") == []
    assert queue.cancel(TaskRecord.objects.get(id=flagged.id).id) is True
    assert [str(i) for i in queue.cancel_requests("w1")] == [flagged.id]
    assert queue.cancel_requests("w2") == []
