"""The leader lease, the Maintenance step (leader-only scheduling and pruning) and the Pruner."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from taskmill.conf import get_settings
from taskmill.models import Leadership, Schedule, TaskRecord
from taskmill.queue.leader import LeaderLease
from taskmill.queue.pruning import Selection, delete_batches
from taskmill.schedules import build_spec
from taskmill.testing import run_until_empty
from taskmill.worker.maintenance import Maintenance, Pruner
from tests.testapp.tasks import fail_value_error, noop
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def lease(worker_id: str, seconds: float = 30) -> LeaderLease:
    return LeaderLease(
        database_alias="default", name="leader:default", worker_id=worker_id, seconds=seconds
    )


def test_lease__one_worker_leads_and_renews_within_its_term() -> None:
    first, second = lease("w1"), lease("w2")

    assert first.acquire_or_renew() is True
    assert second.acquire_or_renew() is False
    assert first.acquire_or_renew() is True
    assert Leadership.objects.get().worker_id == "w1"
    assert Leadership.objects.get().term == 1


def test_lease__an_expired_lease_is_taken_over_in_a_new_term() -> None:
    first, second = lease("w1", seconds=0.2), lease("w2")
    first.acquire_or_renew()

    wait_until(second.acquire_or_renew, timeout=10, message="w2 taking over after the lease")

    row = Leadership.objects.get()
    assert (row.worker_id, row.term) == ("w2", 2)
    assert first.acquire_or_renew() is False


def test_lease__released_lease_is_taken_at_once() -> None:
    first, second = lease("w1"), lease("w2")
    first.acquire_or_renew()

    first.release()

    assert second.acquire_or_renew() is True


def maintenance(worker_id: str) -> Maintenance:
    return Maintenance(
        backend_alias="default",
        database_alias="default",
        worker_id=worker_id,
        settings=get_settings(),
    )


def test_maintenance__only_the_leader_enqueues_due_schedules() -> None:
    spec = build_spec(
        name="often",
        task_path="tests.testapp.tasks.noop",
        backend="default",
        every=3600,
        start_now=True,
    )
    leader, follower = maintenance("w1"), maintenance("w2")
    leader.start([spec])
    follower.start([spec])

    leader.run_once(100.0)
    follower.run_once(100.0)

    assert leader.is_leader(100.0)
    assert not follower.is_leader(100.0)
    assert TaskRecord.objects.filter(schedule__name="often").count() == 1
    assert Schedule.objects.get().last_due_at is not None
    assert leader.next_step_at > 100.0


def test_maintenance__steps_wait_until_due() -> None:
    leader = maintenance("w1")
    leader.run_once(100.0)
    renew_at = leader.next_lease_at

    leader.run_once(100.01)

    assert leader.next_lease_at == renew_at
    assert renew_at <= 100.0 + get_settings().LEASE_SECONDS / 3


def finished(task: object = noop) -> TaskRecord:
    task.enqueue()  # type: ignore[attr-defined]  # a task
    run_until_empty()
    return TaskRecord.objects.order_by("-enqueued_at").first()  # type: ignore[return-value]


def test_finish__keeps_results_for_result_ttl() -> None:
    record = finished()

    assert record.finished_at is not None
    assert record.expires_at is not None
    assert record.expires_at - record.finished_at == timedelta(days=7)


@override_settings(TASKMILL={"FAILED_RESULT_TTL": timedelta(days=30)})
def test_finish__failures_may_be_kept_longer() -> None:
    failed = finished(fail_value_error)
    succeeded = finished(noop)

    assert failed.expires_at - failed.finished_at == timedelta(days=30)  # type: ignore[operator]
    assert succeeded.expires_at - succeeded.finished_at == timedelta(days=7)  # type: ignore[operator]


def test_pruner__deletes_expired_results_only() -> None:
    expired, kept = finished(), finished()
    TaskRecord.objects.filter(id=expired.id).update(expires_at=LONG_AGO)
    queued = noop.enqueue()

    assert Pruner("default").run_once() is True

    assert not TaskRecord.objects.filter(id=expired.id).exists()
    assert TaskRecord.objects.filter(id=kept.id).exists()
    assert TaskRecord.objects.filter(id=queued.id).exists()


def test_delete_batches__works_a_batch_at_a_time_within_its_budget() -> None:
    for _ in range(5):
        noop.enqueue()
    run_until_empty()
    TaskRecord.objects.update(expires_at=LONG_AGO)

    deleted, done = delete_batches("default", Selection(), batch_size=2, time_budget=0)

    assert (deleted, done) == ({"succeeded": 2}, False)
    deleted, done = delete_batches("default", Selection(), batch_size=2)
    assert (deleted, done) == ({"succeeded": 3}, True)
    assert not TaskRecord.objects.exists()
