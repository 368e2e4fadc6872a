"""The leader lease, the Maintenance step (leader-only scheduling, pruning and vacuuming), the
Pruner and the Vacuumer."""

import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.db.models.signals import post_save
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from taskmill.conf import get_settings
from taskmill.models import Leadership, Schedule, TaskRecord
from taskmill.queue import get_queue
from taskmill.queue.leader import LeaderLease
from taskmill.queue.pruning import Selection, delete_batches
from taskmill.queue.vacuum import open_table_vacuum
from taskmill.schedules import build_spec
from taskmill.testing import run_until_empty
from taskmill.worker.maintenance import (
    VACUUM_CHECK_INTERVAL,
    VACUUM_PACING,
    VACUUM_POLL,
    Maintenance,
    Pruner,
    Vacuumer,
)
from tests.churn import autovacuum_off, churn, flush_statistics, vacuum_count
from tests.lock_waits import in_other_session
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


def test_lease__a_follower_tries_no_insert_that_would_fail() -> None:
    # A failed INSERT is an ERROR line in the database server's log: one per follower at every
    # election would bury the log's real errors.
    lease("w1").acquire_or_renew()

    with CaptureQueriesContext(connection) as queries:
        assert lease("w2").acquire_or_renew() is False

    assert not [query["sql"] for query in queries if query["sql"].startswith("INSERT")]


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


@pytest.mark.only_on("postgresql", "mysql")  # SQLite: a writer locks the whole file anyway
@pytest.mark.django_db(transaction=True)
def test_lease__a_worker_stalled_taking_it_first_holds_up_no_other() -> None:
    # A worker stopped right after its INSERT of the lease's row (SIGSTOP, swap): were the
    # INSERT in a transaction of its own, every other worker's INSERT would wait for its
    # COMMIT, their loops (heartbeats, rescues) stopped meanwhile.
    inserted, resume = threading.Event(), threading.Event()

    def stall(**kwargs: object) -> None:
        if threading.current_thread() is taking:
            inserted.set()
            resume.wait(timeout=30)

    def take() -> None:
        try:
            lease("w1").acquire_or_renew()
        finally:
            connections.close_all()

    post_save.connect(stall, sender=Leadership, dispatch_uid="stall-the-first-leader")
    taking = threading.Thread(target=take)
    try:
        taking.start()
        assert inserted.wait(timeout=10)
        assert in_other_session(lease("w2").acquire_or_renew) is False
    finally:
        resume.set()
        taking.join(timeout=10)
        post_save.disconnect(dispatch_uid="stall-the-first-leader", sender=Leadership)
    assert Leadership.objects.get().worker_id == "w1"


def maintenance(worker_id: str) -> Maintenance:
    return Maintenance(
        backend_alias="default",
        database_alias="default",
        worker_id=worker_id,
        settings=get_settings(),
    )


def test_maintenance__only_the_leader_enqueues_due_schedules(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
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

    queue = get_queue("default")
    queue.take_made_ready()  # the queue object is shared: forget other tests' news
    # The leader's enqueue is news for its own supervisor, which claims at once.
    with django_capture_on_commit_callbacks(execute=True):  # the test's transaction commits
        leader.run_once(100.0)
    assert queue.take_made_ready() is True
    with django_capture_on_commit_callbacks(execute=True):
        follower.run_once(100.0)
    assert queue.take_made_ready() is False

    assert leader.is_leader(100.0)
    assert not follower.is_leader(100.0)
    assert TaskRecord.objects.filter(schedule__name="often").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        leader.run_once(100.01)
    assert queue.take_made_ready() is False  # the next due time is an hour away
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


@pytest.mark.only_on("postgresql")
def test_maintenance__the_leader_has_a_vacuumer_on_postgresql() -> None:
    assert maintenance("w1").vacuumer is not None


@pytest.mark.only_on("sqlite", "mysql")
def test_maintenance__no_vacuumer_where_there_is_nothing_to_vacuum() -> None:
    leader = maintenance("w1")

    leader.run_once(100.0)

    assert leader.vacuumer is None
    assert leader.is_leader(100.0)


@pytest.fixture
def no_autovacuum() -> Iterator[None]:
    with autovacuum_off():
        yield


def vacuumer(after_dead_rows: int) -> Vacuumer:
    vacuum = open_table_vacuum("default")
    assert vacuum is not None
    return Vacuumer(vacuum, after_dead_rows=after_dead_rows)


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("no_autovacuum")
def test_vacuumer__waits_for_enough_dead_rows_then_vacuums_and_paces_the_next() -> None:
    step = vacuumer(after_dead_rows=1000)
    vacuums = vacuum_count()
    churn(100)  # 200 dead versions
    flush_statistics()

    step.run_once(100.0)

    assert step.started_at is None
    assert step.next_check_at == 100.0 + VACUUM_CHECK_INTERVAL
    churn(500)
    flush_statistics()
    step.run_once(102.0)
    assert step.started_at == 102.0
    clock = [102.0]

    def vacuum_ended() -> bool:
        clock[0] += VACUUM_POLL
        step.run_once(clock[0])
        return step.started_at is None

    wait_until(vacuum_ended, timeout=60, message="the vacuum ending")
    assert vacuum_count() == vacuums + 1
    assert step.left_behind < 1000
    took = clock[0] - 102.0
    assert step.next_check_at == clock[0] + max(VACUUM_CHECK_INTERVAL, took * VACUUM_PACING)
    assert step.vacuum.connection is None


@pytest.mark.only_on("postgresql")
@pytest.mark.django_db(transaction=True)
def test_maintenance__stopping_cancels_the_leaders_running_vacuum() -> None:
    leader = maintenance("w1")
    assert leader.vacuumer is not None
    leader.vacuumer.after_dead_rows = 100
    churn(1000)
    flush_statistics()

    leader.run_once(100.0)
    assert leader.vacuumer.started_at == 100.0
    leader.stop()

    assert leader.vacuumer.started_at is None
    assert leader.vacuumer.vacuum.connection is None
    assert not leader.is_leader(100.0)


@pytest.mark.only_on("postgresql")
def test_vacuumer__a_vacuum_that_cant_connect_is_logged_and_tried_again_later(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    step = vacuumer(after_dead_rows=0)
    params = step.vacuum.wrapper.get_connection_params()
    monkeypatch.setattr(step.vacuum.wrapper, "get_connection_params", lambda: {**params, "port": 1})

    with caplog.at_level(logging.WARNING, logger="taskmill"):
        step.run_once(100.0)

    assert step.started_at is None
    assert step.next_check_at == 100.0 + VACUUM_CHECK_INTERVAL
    assert "could not connect to vacuum the task table" in caplog.text
