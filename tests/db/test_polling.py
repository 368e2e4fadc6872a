"""When an idle worker claims again: soon after finding work where nothing pushes news of the
next task (MariaDB/MySQL, a lost LISTEN connection), backing off where something does, and
when a retry it wrote falls due."""

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone

from taskmill.enqueueing import build_record
from taskmill.models import TaskRecord
from taskmill.schedules import build_spec
from taskmill.worker.claim_schedule import (
    ACTIVE_POLL,
    ACTIVE_POLL_WINDOW,
    DUE_MARGIN,
    MAX_DUE_TIMES,
    MIN_POLL,
)
from taskmill.worker.supervisor import Supervisor
from tests.supervisors import supervisor_in_process
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def supervisor() -> Iterator[Supervisor]:
    supervisor = supervisor_in_process("solo")
    supervisor.sleeper.open_waiter_if_needed()
    yield supervisor
    supervisor.sleeper.close_waiter()


def _claimed(supervisor: Supervisor, now: float, *, found_work: bool) -> None:
    """What the supervisor's claim at `now` tells its schedule."""
    supervisor.claims.after_claim(
        now, found_work=found_work, news_pushed=supervisor.sleeper.pushes_news
    )


def _delays_after_work(supervisor: Supervisor, empty_claims: int, *, start: float) -> list[float]:
    """Claim once with work found at `start`, then empty; return each wait before the next."""
    _claimed(supervisor, start, found_work=True)
    delays, now = [], start
    for _ in range(empty_claims):
        _claimed(supervisor, now, found_work=False)
        delays.append(round(supervisor.claims.next_at - now, 6))
        now = supervisor.claims.next_at
    return delays


def test_the_waiter_pushes_news_except_on_mysql(supervisor: Supervisor) -> None:
    assert supervisor.sleeper.pushes_news is (connection.vendor != "mysql")


def test_without_pushed_news_the_worker_looks_often_for_a_while_after_finding_work(
    supervisor: Supervisor,
) -> None:
    supervisor.sleeper.close_waiter()  # as when the channel is lost, or on MariaDB/MySQL

    delays = _delays_after_work(supervisor, 110, start=1000.0)

    often = next(index for index, delay in enumerate(delays) if delay != ACTIVE_POLL)
    assert ACTIVE_POLL_WINDOW <= often * ACTIVE_POLL <= ACTIVE_POLL_WINDOW + ACTIVE_POLL
    # Then it backs off as a worker with news pushed does, up to POLL_INTERVAL (1 s).
    assert delays[often : often + 6] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_with_pushed_news_the_worker_backs_off_at_once(supervisor: Supervisor) -> None:
    if not supervisor.sleeper.pushes_news:
        pytest.skip("MariaDB/MySQL push no news")

    assert _delays_after_work(supervisor, 6, start=1000.0) == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert MIN_POLL == 0.05  # the first of those doubles it


def test_the_often_look_never_waits_longer_than_poll_interval(supervisor: Supervisor) -> None:
    supervisor.sleeper.close_waiter()
    supervisor.claims.poll_interval = 0.01

    assert set(_delays_after_work(supervisor, 20, start=1000.0)) == {0.01}


def test_a_retry_the_worker_wrote_is_claimed_when_due_not_at_the_next_poll(
    supervisor: Supervisor,
) -> None:
    supervisor.claims.poll_delay = (
        0.5  # backed off: the next poll would be POLL_INTERVAL (1 s) away
    )
    start = time.monotonic()
    supervisor.claims.expect_due(timezone.now() + timedelta(seconds=0.3))
    supervisor.claims.expect_due(timezone.now() + timedelta(seconds=0.6))

    _claimed(supervisor, start, found_work=False)
    first = supervisor.claims.next_at
    # The claim at the first due time finds nothing (another worker took the task, say).
    _claimed(supervisor, first, found_work=False)
    second = supervisor.claims.next_at
    _claimed(supervisor, second, found_work=False)

    # Each is due a little after its time (DUE_MARGIN); the bound above leaves room for a
    # slow machine between reading the two clocks, and stays short of the 1 s poll.
    assert 0.3 + DUE_MARGIN <= first - start < 0.8
    assert 0.6 + DUE_MARGIN <= second - start < 1.1
    assert supervisor.claims.next_at - second == pytest.approx(1.0)  # then polling again


def test_the_leader_claims_at_once_after_enqueueing_due_schedules(supervisor: Supervisor) -> None:
    assert supervisor.maintenance is not None
    spec = build_spec(
        name="often",
        task_path="tests.testapp.tasks.noop",
        backend="default",
        every=3600,
        start_now=True,
    )
    supervisor.maintenance.start([spec])
    supervisor.queue.take_made_ready()  # the queue object is shared: forget other tests' news
    now = time.monotonic()
    supervisor.claims.next_at = now + 1.0  # backed off

    supervisor._maintain_if_due(now)
    supervisor._wait_for_work()  # without the news, the solo pool would sleep here

    assert TaskRecord.objects.filter(schedule__name="often").count() == 1
    assert now <= supervisor.claims.next_at <= time.monotonic()


def test_the_worker_keeps_the_earliest_due_times_it_knows(supervisor: Supervisor) -> None:
    supervisor.claims.next_at = time.monotonic() + 3600  # backed off
    now = time.time()
    for seconds in range(MAX_DUE_TIMES + 10, 0, -1):  # the latest first
        supervisor.claims.expect_due_at(now + 60 + seconds)

    kept = supervisor.claims.due_times
    assert len(kept) == MAX_DUE_TIMES
    assert kept == sorted(kept)
    assert kept[0] - time.monotonic() == pytest.approx(61 + DUE_MARGIN, abs=0.5)
    assert supervisor.claims.next_at == kept[0]


def test_tasks_the_worker_enqueues_for_later_are_no_news_now(supervisor: Supervisor) -> None:
    queue = supervisor.queue
    queue.take_made_ready()  # the queue object is shared: forget other tests' news
    now = timezone.now()
    deferred = tasks.noop.using(run_after=now + timedelta(minutes=5))

    def records(*task_list: object) -> list[TaskRecord]:
        return [
            build_record(task, (), {}, database_alias=DEFAULT_DB_ALIAS, now=now)  # type: ignore[arg-type]
            for task in task_list
        ]

    queue.insert(records(deferred))
    queue.insert(records(deferred, deferred))
    assert queue.take_made_ready() is False  # a claim now would find nothing

    queue.insert(records(deferred, tasks.noop))
    assert queue.take_made_ready() is True


def test_a_due_time_heard_twice_is_one_claim(supervisor: Supervisor) -> None:
    due = time.time() + 60
    supervisor.claims.expect_due_at(due)
    supervisor.claims.expect_due_at(due + DUE_MARGIN / 2)  # the retry it wrote, announced back

    assert len(supervisor.claims.due_times) == 1
