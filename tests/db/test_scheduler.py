"""The Scheduler against a real database: syncing rows, and each due time enqueued once."""

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connections, transaction
from django.test import override_settings

from taskmill.models import Schedule, TaskRecord
from taskmill.scheduler import Scheduler
from taskmill.schedules import ScheduleSpec, build_spec
from taskmill.timing import CatchUp

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ADD = "tests.testapp.tasks.add"


def spec(name: str = "adder", **declared: Any) -> ScheduleSpec:
    declared.setdefault("every", 60)
    declared.setdefault("args", [1, 2])
    return build_spec(name=name, task_path=ADD, backend="default", **declared)


@pytest.fixture
def scheduler() -> Scheduler:
    return Scheduler(
        backend_alias="default", database_alias="default", missed_after=timedelta(seconds=90)
    )


def runs(name: str = "adder") -> list[datetime | None]:
    return list(
        TaskRecord.objects.filter(schedule__name=name)
        .order_by("scheduled_for")
        .values_list("scheduled_for", flat=True)
    )


# -- sync -------------------------------------------------------------------------------------


def test_sync__adds_rows_with_their_first_due_time(scheduler: Scheduler) -> None:
    report = scheduler.sync(
        [spec("later"), spec("now", start_now=True), spec("nightly", every=None, cron="0 2 * * *")],
        now=T0,
    )

    assert sorted(report.added) == ["later", "nightly", "now"]
    due = dict(Schedule.objects.values_list("name", "next_due_at"))
    assert due == {
        "later": T0 + timedelta(seconds=60),
        "now": T0,
        "nightly": T0.replace(day=2, hour=2),
    }
    row = Schedule.objects.get(name="later")
    assert (row.task_path, row.args, row.interval_seconds, row.enabled) == (ADD, [1, 2], 60.0, True)


def test_sync__again_unchanged_changes_nothing(scheduler: Scheduler) -> None:
    scheduler.sync([spec()], now=T0)

    report = scheduler.sync([spec()], now=T0 + timedelta(hours=1))

    assert (report.added, report.changed, report.disabled) == ([], [], [])
    assert Schedule.objects.get().next_due_at == T0 + timedelta(seconds=60)


def test_sync__changed_timing_restarts_from_now_and_keeps_last_due(scheduler: Scheduler) -> None:
    scheduler.sync([spec()], now=T0)
    Schedule.objects.update(last_due_at=T0)

    report = scheduler.sync([spec(every=300, args=[5, 5])], now=T0 + timedelta(hours=1))

    assert report.changed == ["adder"]
    row = Schedule.objects.get()
    assert row.next_due_at == T0 + timedelta(hours=1, seconds=300)
    assert (row.args, row.last_due_at) == ([5, 5], T0)


def test_sync__removed_schedule_is_disabled_and_comes_back_enabled(scheduler: Scheduler) -> None:
    scheduler.sync([spec("kept"), spec("gone")], now=T0)

    report = scheduler.sync([spec("kept")], now=T0)

    assert report.disabled == ["gone"]
    gone = Schedule.objects.get(name="gone")
    assert (gone.enabled, gone.in_code) == (False, False)
    scheduler.sync([spec("kept"), spec("gone")], now=T0 + timedelta(days=1))
    gone.refresh_from_db()
    assert (gone.enabled, gone.in_code) == (True, True)
    assert gone.next_due_at == T0 + timedelta(days=1, seconds=60)


def test_sync__keeps_an_operator_s_disable(scheduler: Scheduler) -> None:
    scheduler.sync([spec()], now=T0)
    Schedule.objects.update(enabled=False)

    scheduler.sync([spec()], now=T0)

    assert Schedule.objects.get().enabled is False


def test_sync__other_backends_schedules_are_left_alone(scheduler: Scheduler) -> None:
    Schedule.objects.create(name="elsewhere", backend="other", task_path=ADD, interval_seconds=5)

    scheduler.sync([], now=T0)

    assert Schedule.objects.get(name="elsewhere").enabled is True


# -- enqueue_due ------------------------------------------------------------------------------


def test_enqueue_due__enqueues_the_due_time_once_with_run_after_equal_to_it(
    scheduler: Scheduler,
) -> None:
    scheduler.sync([spec(start_now=True)], now=T0)

    tick = scheduler.enqueue_due(T0 + timedelta(seconds=1))
    again = scheduler.enqueue_due(T0 + timedelta(seconds=2))

    assert (tick.enqueued, again.enqueued) == (1, 0)
    record = TaskRecord.objects.get()
    assert (record.task_path, record.args, record.run_after) == (ADD, [1, 2], T0)
    assert record.scheduled_for == T0
    row = Schedule.objects.get()
    assert (row.last_due_at, row.next_due_at) == (T0, T0 + timedelta(seconds=60))
    assert tick.next_due_at == T0 + timedelta(seconds=60)


def test_enqueue_due__nothing_due_enqueues_nothing(scheduler: Scheduler) -> None:
    scheduler.sync([spec()], now=T0)

    tick = scheduler.enqueue_due(T0 + timedelta(seconds=59))

    assert tick.enqueued == 0
    assert not TaskRecord.objects.exists()


def test_enqueue_due__disabled_schedules_never_run(scheduler: Scheduler) -> None:
    scheduler.sync([spec(start_now=True)], now=T0)
    Schedule.objects.update(enabled=False)

    assert scheduler.enqueue_due(T0 + timedelta(hours=1)).enqueued == 0


def test_enqueue_due__late_due_times_each_run_once(scheduler: Scheduler) -> None:
    scheduler.sync([spec(every=10, start_now=True)], now=T0)

    scheduler.enqueue_due(T0 + timedelta(seconds=35))

    assert runs() == [T0 + timedelta(seconds=s) for s in (0, 10, 20, 30)]


@pytest.mark.parametrize(("catch_up", "expected"), [(CatchUp.ONCE, 1), (CatchUp.SKIP, 0)])
def test_enqueue_due__missed_period_follows_catch_up(
    scheduler: Scheduler, catch_up: CatchUp, expected: int
) -> None:
    scheduler.sync([spec(every=None, cron="0 * * * *", catch_up=catch_up)], now=T0)

    tick = scheduler.enqueue_due(T0 + timedelta(hours=5, minutes=30))

    assert tick.enqueued == expected
    assert runs() == [T0 + timedelta(hours=5)] * expected
    assert Schedule.objects.get().next_due_at == T0 + timedelta(hours=6)


def test_enqueue_due__a_stale_leader_enqueues_nothing(scheduler: Scheduler) -> None:
    scheduler.sync([spec(start_now=True)], now=T0)
    stale = Schedule.objects.get()
    now = T0 + timedelta(seconds=1)

    first = scheduler._enqueue_schedule(Schedule.objects.get(), now)
    second = scheduler._enqueue_schedule(stale, now)  # read before the first advanced it

    assert (first, second) == (1, 0)
    assert runs() == [T0]


def test_enqueue_due__unique_constraint_refuses_a_duplicate_and_the_schedule_moves_on(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler.sync([spec(start_now=True)], now=T0)
    scheduler.enqueue_due(T0)
    # As if the compare-and-set had been defeated: the schedule points at a due time again.
    Schedule.objects.update(next_due_at=T0)

    with caplog.at_level(logging.WARNING, logger="taskmill.scheduler"):
        tick = scheduler.enqueue_due(T0 + timedelta(seconds=1))

    assert tick.enqueued == 0
    assert runs() == [T0]
    assert "already enqueued" in caplog.text
    assert Schedule.objects.get().next_due_at == T0 + timedelta(seconds=60)


def test_unique_constraint__refuses_a_second_run_for_the_same_due_time(
    scheduler: Scheduler,
) -> None:
    scheduler.sync([spec(start_now=True)], now=T0)
    scheduler.enqueue_due(T0)
    record = TaskRecord.objects.get()

    with pytest.raises(IntegrityError), transaction.atomic():
        TaskRecord.objects.create(
            **{
                f.attname: getattr(record, f.attname)
                for f in TaskRecord._meta.concrete_fields
                if f.attname != "id"
            }
        )


def test_enqueue_due__a_task_that_no_longer_imports_is_logged_and_skipped(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    Schedule.objects.create(
        name="broken", task_path="tests.testapp.tasks.gone", interval_seconds=60, next_due_at=T0
    )

    with caplog.at_level(logging.ERROR, logger="taskmill.scheduler"):
        tick = scheduler.enqueue_due(T0)

    assert tick.enqueued == 0
    assert "schedule=broken" in caplog.text
    assert Schedule.objects.get().next_due_at == T0 + timedelta(seconds=60)


def test_enqueue_due__runs_are_claimed_and_run_by_a_worker(scheduler: Scheduler) -> None:
    from taskmill.testing import run_until_empty

    scheduler.sync([spec(start_now=True)], now=T0)
    scheduler.enqueue_due(T0)

    assert run_until_empty() == 1
    assert TaskRecord.objects.get().return_value == 3


def test_enqueue_due__uses_the_database_clock_by_default(scheduler: Scheduler) -> None:
    scheduler.sync([spec(start_now=True)])  # first seen now, on the database's clock
    started = Schedule.objects.get().next_due_at
    assert started is not None

    tick = scheduler.enqueue_due()

    assert tick.enqueued == 1
    assert tick.now >= started
    assert runs() == [started]


@pytest.mark.django_db(transaction=True)
def test_enqueue_due__racing_leaders_enqueue_each_due_time_once() -> None:
    Scheduler(
        backend_alias="default", database_alias="default", missed_after=timedelta(seconds=90)
    ).sync([spec(every=1, start_now=True)], now=T0)
    leaders = 4
    barrier = threading.Barrier(leaders)
    errors: list[BaseException] = []

    def lead() -> None:
        scheduler = Scheduler(
            backend_alias="default", database_alias="default", missed_after=timedelta(seconds=90)
        )
        try:
            barrier.wait()
            for second in range(1, 6):
                scheduler.enqueue_due(T0 + timedelta(seconds=second))
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=lead) for _ in range(leaders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert runs() == [T0 + timedelta(seconds=s) for s in range(6)]


# -- checks -----------------------------------------------------------------------------------


def check_ids_and_messages() -> list[tuple[str, str]]:
    from django.core import checks

    return [
        (str(message.id), message.msg)
        for message in checks.run_checks()
        if str(message.id).startswith("taskmill.")
    ]


def test_check__schedule_setting_naming_no_registered_task_is_e030() -> None:
    schedule = {"bad": {"task": "tests.testapp.tasks.not_a_task", "every": 60}}
    with override_settings(TASKMILL={"SCHEDULE": schedule}):
        found = check_ids_and_messages()

    ((check_id, message),) = found
    assert check_id == "taskmill.E030"
    assert "TASKMILL['SCHEDULE']['bad']" in message
    assert "not a registered Taskmill task" in message


def test_check__malformed_schedule_setting_is_e010() -> None:
    with override_settings(TASKMILL={"SCHEDULE": {"bad": {"task": "a.b", "cron": "0 0 0 0 0"}}}):
        found = check_ids_and_messages()

    assert found == [
        (
            "taskmill.E010",
            "Schedule 'bad': invalid cron expression '0 0 0 0 0'; use five fields (minute hour "
            "day-of-month month day-of-week, e.g. '30 7 * * 1') or an alias such as '@daily'.",
        )
    ]


def test_check__valid_schedule_setting_is_clean() -> None:
    schedule = {"ok": {"task": ADD, "cron": "@daily", "args": [1, 2]}}
    with override_settings(TASKMILL={"SCHEDULE": schedule}):
        assert check_ids_and_messages() == []


# -- daylight saving, through the whole scheduler ------------------------------------------


@pytest.mark.parametrize(
    ("day", "local_times"),
    [
        # Spring forward in Paris: 02:30 doesn't exist; it runs once, at 03:00 (CEST).
        (datetime(2026, 3, 29, tzinfo=UTC), ["03:00+0200"]),
        # Fall back in Paris: 02:30 happens twice; it runs once, the first time (CEST).
        (datetime(2026, 10, 25, tzinfo=UTC), ["02:30+0200"]),
    ],
)
def test_enqueue_due__a_daily_cron_runs_once_on_daylight_saving_days(
    scheduler: Scheduler, day: datetime, local_times: list[str]
) -> None:
    start = day - timedelta(hours=2)  # the evening before, in Paris
    scheduler.sync([spec(every=None, cron="30 2 * * *", timezone="Europe/Paris")], now=start)

    # A leader ticking every ten minutes through the day.
    for minute in range(0, 24 * 60, 10):
        scheduler.enqueue_due(start + timedelta(minutes=minute))

    paris = ZoneInfo("Europe/Paris")
    found = [due.astimezone(paris).strftime("%H:%M%z") for due in runs() if due is not None]
    assert found == local_times
