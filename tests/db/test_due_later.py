"""Work due later, announced (PostgreSQL): an enqueue of a task whose run_after is ahead tells
listening workers when it falls due, and a worker serving its queue claims then rather than at
its next poll. Tasks due now are news at once, as before."""

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone

import taskmill
from taskmill.enqueueing import build_record
from taskmill.models import TaskRecord
from taskmill.outcomes import AttemptError, Transition
from taskmill.queue import get_queue
from taskmill.queue.finishing import Finish
from taskmill.queue.lease import ClaimRequest, Lease
from taskmill.queue.postgres import MAX_LATER, _due_time
from taskmill.states import State
from taskmill.worker.claim_schedule import DUE_MARGIN
from taskmill.worker.sleeper import Sleeper, Wake
from taskmill.worker.supervisor import Supervisor
from tests.supervisors import supervisor_in_process
from tests.testapp import tasks

pytestmark = [pytest.mark.only_on("postgresql"), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sleeper() -> Iterator[Sleeper]:
    sleeper = Sleeper(get_queue(DEFAULT_DB_ALIAS))
    sleeper.open_waiter_if_needed()
    yield sleeper
    sleeper.close_waiter()


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    supervisor = supervisor_in_process("solo", queues=["default"])
    supervisor.sleeper.open_waiter_if_needed()
    yield supervisor
    supervisor.sleeper.close_waiter()


def _assert_news_for_later(sleeper: Sleeper, queue_name: str, due: datetime) -> None:
    """The next wake-up is news of work due later only: this queue's, at this time."""
    assert sleeper.sleep(10, []) == Wake.LATER
    [(announced_queue, announced_due)] = sleeper.take_later()
    assert announced_queue == queue_name
    assert announced_due == pytest.approx(due.timestamp(), abs=1e-3)


def _finish(claimed: TaskRecord, transition: Transition) -> None:
    finish = Finish(lease=Lease.of(claimed), transition=transition, prior_errors=[])
    get_queue(DEFAULT_DB_ALIAS).finish_many([finish], now=timezone.now())


@pytest.mark.parametrize("how", ["enqueue()", "enqueue_many()"])
def test_a_deferred_enqueue_is_news_for_later_with_its_due_time(sleeper: Sleeper, how: str) -> None:
    run_after = timezone.now() + timedelta(minutes=1)
    deferred = tasks.noop.using(run_after=run_after)
    if how == "enqueue()":
        deferred.enqueue()
    else:
        taskmill.enqueue_many(deferred, [((), {})] * 3)

    # Not news now: a claim would find nothing.
    _assert_news_for_later(sleeper, "default", run_after)
    assert sleeper.take_later() == []


def test_one_commit_with_tasks_due_now_and_later_is_news_now_and_for_later(
    sleeper: Sleeper,
) -> None:
    now = timezone.now()
    soon, later = now + timedelta(seconds=30), now + timedelta(minutes=5)
    records = [
        build_record(task, (), {}, database_alias=DEFAULT_DB_ALIAS, now=now)
        for task in [
            tasks.noop,
            tasks.noop.using(queue_name="low", run_after=later),
            tasks.noop.using(queue_name="low", run_after=soon),
        ]
    ]

    get_queue(DEFAULT_DB_ALIAS).insert(records)  # the many-row path, in one transaction

    assert sleeper.sleep(10, []) == Wake.NEWS
    [(queue_name, due)] = sleeper.take_later()  # the earliest of the queue's
    assert queue_name == "low"
    assert due == pytest.approx(soon.timestamp(), abs=1e-3)


def test_a_run_after_already_past_is_news_now(sleeper: Sleeper) -> None:
    tasks.noop.using(run_after=timezone.now() - timedelta(minutes=1)).enqueue()

    assert sleeper.sleep(10, []) == Wake.NEWS
    assert sleeper.take_later() == []


def _claim_all(queue_name: str, lease_seconds: float = 30) -> list[TaskRecord]:
    request = ClaimRequest(
        worker_id="w1", queue_names=(queue_name,), limit=10, lease_seconds=lease_seconds
    )
    return get_queue(DEFAULT_DB_ALIAS).claim(request)


def test_a_retry_is_announced_for_when_it_falls_due(sleeper: Sleeper) -> None:
    tasks.noop.using(queue_name="low").enqueue()
    (claimed,) = _claim_all("low")
    assert sleeper.sleep(10, []) == Wake.NEWS  # the enqueue's
    later = timezone.now() + timedelta(minutes=5)
    error = AttemptError(exception_class_path="builtins.ValueError", traceback="ValueError\n")

    _finish(claimed, Transition(state=State.READY, run_after=later, error=error))

    # Whichever worker is idle when it falls due claims it, not only the one that wrote it.
    _assert_news_for_later(sleeper, "low", later)


def test_retries_written_together_are_announced_once_per_queue_at_the_earliest(
    sleeper: Sleeper,
) -> None:
    for _ in range(3):
        tasks.noop.using(queue_name="low").enqueue()
    claimed = _claim_all("low")
    assert sleeper.sleep(10, []) == Wake.NEWS  # the enqueues'
    now = timezone.now()
    dues = [now + timedelta(minutes=minutes) for minutes in (7, 5, 9)]
    error = AttemptError(exception_class_path="builtins.ValueError", traceback="ValueError\n")
    retries = [
        Finish(
            lease=Lease.of(record),
            transition=Transition(state=State.READY, run_after=due, error=error),
            prior_errors=[],
        )
        for record, due in zip(claimed, dues, strict=True)
    ]

    get_queue(DEFAULT_DB_ALIAS).finish_many(retries, now=timezone.now())

    _assert_news_for_later(sleeper, "low", dues[1])  # one notification, not three


def test_a_rescued_task_with_attempts_left_is_announced_for_its_retry(sleeper: Sleeper) -> None:
    tasks.noop.using(max_attempts=2, retry_delay=60).enqueue()
    _claim_all("default")
    TaskRecord.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=5))
    assert sleeper.sleep(10, []) == Wake.NEWS  # the enqueue's

    [(task_id, state)] = get_queue(DEFAULT_DB_ALIAS).rescue_expired()

    assert state == State.READY
    _assert_news_for_later(sleeper, "default", TaskRecord.objects.get(id=task_id).run_after)


def test_a_released_dependant_due_later_is_announced_for_then(sleeper: Sleeper) -> None:
    dependency = tasks.noop.enqueue()
    later = timezone.now() + timedelta(minutes=5)
    tasks.noop.using(depends_on=[dependency], run_after=later).enqueue()  # blocked: no news
    (claimed,) = _claim_all("default")
    assert sleeper.sleep(10, []) == Wake.NEWS  # the dependency's enqueue
    assert sleeper.take_later() == []

    _finish(claimed, Transition(state=State.SUCCEEDED, return_value=None))

    _assert_news_for_later(sleeper, "default", later)


@pytest.mark.parametrize(
    ("payload", "due"),
    [
        ("default", None),
        ("@1796400000.25 default", ("default", 1796400000.25)),
        ("@1796400000 a queue @12", ("a queue @12", 1796400000.0)),
        ("mail@12", None),  # queues named so, due now
        ("@home sweet", None),
        ("@12", None),
        ("@nan x", None),
        ("@inf x", None),
        ("", None),  # a cancel request
    ],
)
def test_due_time__reads_a_payload(payload: str, due: tuple[str, float] | None) -> None:
    assert _due_time(payload) == due


def test_the_waiter_keeps_the_earliest_max_later_announcements_at_a_time(
    sleeper: Sleeper,
) -> None:
    sent = 2 * MAX_LATER + 5
    with connection.cursor() as cursor:
        # The latest due first: the earliest come last, and must not be the ones dropped.
        cursor.execute(
            "SELECT pg_notify('taskmill', '@' || (4102444800 + %s - n) || ' default') "
            "FROM generate_series(1, %s) AS n",
            [sent, sent],
        )

    takes: list[list[tuple[str, float]]] = []
    deadline = time.monotonic() + 10
    while not any(("default", 4102444800.0) in take for take in takes):
        assert time.monotonic() < deadline, "the last notification sent never arrived"
        assert sleeper.sleep(10, []) == Wake.LATER
        takes.append(sleeper.take_later())

    assert all(0 < len(take) <= MAX_LATER for take in takes)
    assert all(take == sorted(take, key=lambda item: item[1]) for take in takes)


def test_a_worker_claims_an_announced_task_when_due_not_at_its_next_poll(
    supervisor: Supervisor,
) -> None:
    start = time.monotonic()
    supervisor.claims.next_at = start + 30  # backed off
    tasks.noop.using(run_after=timezone.now() + timedelta(seconds=0.5)).enqueue()

    wake = supervisor.sleeper.sleep(10, [])
    supervisor._on_wake(wake)

    assert wake == Wake.LATER
    # Due a little after its time (DUE_MARGIN); the bound leaves room for a slow machine
    # between the enqueue and reading the clocks.
    assert 0.5 + DUE_MARGIN - 0.05 <= supervisor.claims.next_at - start < 1.5
    assert supervisor.claims.due_times == [supervisor.claims.next_at]


def test_a_worker_ignores_announcements_for_queues_it_doesnt_serve(
    supervisor: Supervisor,
) -> None:
    backed_off = time.monotonic() + 30
    supervisor.claims.next_at = backed_off
    tasks.noop.using(queue_name="low", run_after=timezone.now() + timedelta(seconds=1)).enqueue()

    wake = supervisor.sleeper.sleep(10, [])
    supervisor._on_wake(wake)

    assert wake == Wake.LATER
    assert supervisor.claims.next_at == backed_off
    assert supervisor.claims.due_times == []
