"""Monitoring statistics: counts, queues, per-minute buckets, running, failures, workers;
every query bounded whatever the number of finished rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from taskmill import stats
from taskmill.states import State
from tests.db import task_rows
from tests.testapp import tasks

pytestmark = pytest.mark.django_db


def test_overview__counts_active_tasks_and_only_the_last_hour_of_finished_ones() -> None:
    tasks.noop.enqueue()
    tasks.build_report.enqueue(1)
    task_rows.running()
    task_rows.finished(State.SUCCEEDED)
    task_rows.finished(State.FAILED)
    task_rows.finished(State.SUCCEEDED, at=timezone.now() - timedelta(hours=2))

    overview = stats.overview()

    assert overview.counts[State.READY] == {"default": 1, "reports": 1}
    assert overview.counts[State.RUNNING] == {"default": 1}
    assert overview.counts[State.SUCCEEDED] == {"default": 1}
    assert overview.counts[State.FAILED] == {"default": 1}
    assert overview.state_totals() == {
        "blocked": 0,
        "ready": 2,
        "running": 1,
        "succeeded": 1,
        "failed": 1,
        "cancelled": 0,
    }


def test_queue_stats__due_waiting_and_oldest_due_age() -> None:
    now = timezone.now()
    old = tasks.noop.enqueue()
    task_rows.put(old, State.READY, run_after=now - timedelta(minutes=5))
    tasks.noop.enqueue()
    tasks.noop.using(run_after=now + timedelta(hours=1)).enqueue()

    later = timezone.now()
    [default] = stats.queue_stats(later)

    assert (default.name, default.due, default.waiting, default.running) == ("default", 2, 1, 0)
    assert default.oldest_wait(later) == later - now + timedelta(minutes=5)


def test_throughput__one_bucket_per_minute_for_the_last_hour() -> None:
    now = timezone.now().replace(second=30)
    task_rows.finished(State.SUCCEEDED, at=now)
    task_rows.finished(State.SUCCEEDED, at=now)
    task_rows.finished(State.FAILED, at=now - timedelta(minutes=10))
    task_rows.finished(State.CANCELLED, at=now - timedelta(minutes=59))

    buckets = stats.overview(now).throughput

    assert len(buckets) == 60
    assert buckets[-1].start == now.replace(second=0, microsecond=0)
    assert (buckets[-1].succeeded, buckets[-1].failed) == (2, 0)
    assert buckets[-11].failed == 1
    assert buckets[0].cancelled == 1
    assert sum(b.succeeded + b.failed + b.cancelled for b in buckets) == 4


def test_running_and_failures__newest_failures_first_and_limited() -> None:
    task_rows.running(progress={"done": 5, "total": 10, "message": "half"})
    now = timezone.now()
    for minutes in range(stats.FAILURES_LIMIT + 3):
        task_rows.finished(State.FAILED, at=now - timedelta(minutes=minutes))

    overview = stats.overview()

    assert [(r.progress or {})["done"] for r in overview.running] == [5]
    assert len(overview.failures) == stats.FAILURES_LIMIT
    finished = [r.finished_at for r in overview.failures if r.finished_at is not None]
    assert finished == sorted(finished, reverse=True)


def test_workers_alive__only_recent_heartbeats() -> None:
    task_rows.worker("alive")
    task_rows.worker("gone", beat=timezone.now() - timedelta(minutes=10))

    assert [w.id for w in stats.overview().workers] == ["alive"]


def test_overview__a_fixed_number_of_queries_however_many_rows(
    django_assert_max_num_queries: DjangoAssertNumQueries,
) -> None:
    for _ in range(30):
        task_rows.finished(State.FAILED)
        task_rows.running()
    # active counts, finished buckets, running, failures, workers (+ content types at most)
    with django_assert_max_num_queries(6):
        overview = stats.overview()
    assert len(overview.failures) == stats.FAILURES_LIMIT


def test_find_tasks__filters_newest_first_and_limit() -> None:
    first = tasks.noop.enqueue()
    tasks.build_report.enqueue(1)
    third = tasks.noop.enqueue()
    failed = task_rows.finished(State.FAILED)

    found = stats.find_tasks(stats.TaskFilter(task_path=tasks.noop.module_path, limit=2))
    assert [str(r.id) for r in found] == [str(failed.id), third.id]
    found = stats.find_tasks(stats.TaskFilter(states=("failed",)))
    assert [str(r.id) for r in found] == [str(failed.id)]
    found = stats.find_tasks(stats.TaskFilter(queue_name="reports"))
    assert [r.task_path for r in found] == [tasks.build_report.module_path]
    later = stats.find_tasks(stats.TaskFilter(since=timezone.now() + timedelta(minutes=1)))
    assert later == []
    everything = stats.find_tasks(stats.TaskFilter(since=timezone.now() - timedelta(minutes=1)))
    assert str(everything[-1].id) == first.id


def test_first_id_at__orders_against_ids_made_before_and_after() -> None:
    before = tasks.noop.enqueue()
    moment = timezone.now() + timedelta(milliseconds=5)
    bound = stats.first_id_at(moment)
    assert str(bound) > before.id
