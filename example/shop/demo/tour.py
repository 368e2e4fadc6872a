"""The tour: each task the demo enqueues, through which part of the API, and what must come
of it. Everything is enqueued with django.tasks' own API plus Taskmill's options."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.utils import timezone

import taskmill

from .. import tasks
from ..models import Customer, Order

SUCCESSFUL = TaskResultStatus.SUCCESSFUL
FAILED = TaskResultStatus.FAILED
REMINDER_DELAY = timedelta(seconds=2)
# The worker compares run_after with the database's clock; SQLite keeps milliseconds.
CLOCK_TOLERANCE = timedelta(milliseconds=5)
CATALOGUE_PRODUCTS = 60  # six seconds of work, reported as progress
EXPORT_BATCHES = 100  # ten seconds of work if nobody cancelled it
CANCEL_AT = 0.5  # the demo cancels the export half-way through
STOPPED_CLEANLY = tasks.STOPPED_CLEANLY


@dataclass(frozen=True, slots=True, kw_only=True)
class Expected:
    """How a stop must end."""

    status: TaskResultStatus
    attempts: int = 1
    errors: tuple[str, ...] = ()  # class names of the errors, one per failed attempt
    claimed_first: bool = False  # no other task started before it
    stopped_by_itself: bool = False  # cancelled, and it saw so and returned (is_cancelled())

    def describe(self) -> str:
        """Say how the stop must end, in the summary's words."""
        if self.status == SUCCESSFUL:
            return "SUCCESSFUL" + (f" on attempt {self.attempts}" if self.attempts > 1 else "")
        text = f"{self.status}: {self.errors[-1]}" if self.errors else str(self.status)
        if self.attempts == 0:
            text += ", never run"
        if self.stopped_by_itself:
            text += ", stops itself"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """One task result on the tour; `result` is refreshed in place while the demo watches."""

    label: str
    shows: str
    result: TaskResult[..., Any]
    expected: Expected
    after: tuple[Stop, ...] = ()  # its depends_on
    announce_start: bool = False
    live_output: bool = False  # draw its progress and show its output while it runs
    cancel_at: float | None = None  # taskmill.cancel() once its progress reaches this fraction
    # What a second enqueue of the same call returned: a unique task gives this result back.
    duplicate: TaskResult[..., Any] | None = None


def enqueue_tour(customer: Customer) -> list[Stop]:
    """Enqueue every task of the tour and return the stops, in the order enqueued."""
    return [
        *_quick_stops(customer),
        *_order_stops(customer),
        *_failure_stops(),
        *_report_stops(),
        *_housekeeping_stops(),
        *_long_stops(),
    ]


def _quick_stops(customer: Customer) -> list[Stop]:
    welcome = tasks.send_welcome_email.using(for_object=customer)
    reminder = tasks.send_reminder.using(run_after=REMINDER_DELAY, for_object=customer)
    return [
        Stop(
            label="add(2, 3)",
            shows="a quick task",
            result=tasks.add.enqueue(2, 3),
            expected=Expected(status=SUCCESSFUL),
        ),
        Stop(
            label="send_welcome_email(ada)",
            shows="a model instance, passed by reference; for_object=ada",
            result=welcome.enqueue(customer),
            expected=Expected(status=SUCCESSFUL),
        ),
        Stop(
            label="send_reminder(ada)",
            shows=f".using(run_after={REMINDER_DELAY.seconds} s): deferred",
            result=reminder.enqueue(customer),
            expected=Expected(status=SUCCESSFUL),
        ),
    ]


def _order_stops(customer: Customer) -> list[Stop]:
    # The order and its charge commit together: the task exists if and only if the order does.
    with transaction.atomic():
        order = Order.objects.create(customer=customer, total="42.00")
        charge = tasks.charge_order.using(for_object=order).enqueue(order)
    reserve = tasks.reserve_stock.using(for_object=order).enqueue(order)
    ship = tasks.ship_order.using(depends_on=[charge, reserve], for_object=order).enqueue(order)
    charge_stop = Stop(
        label="charge_order(order)",
        shows="enqueued in transaction.atomic() with the order it charges",
        result=charge,
        expected=Expected(status=SUCCESSFUL),
    )
    reserve_stop = Stop(
        label="reserve_stock(order)",
        shows="half a second of work",
        result=reserve,
        expected=Expected(status=SUCCESSFUL),
    )
    ship_stop = Stop(
        label="ship_order(order)",
        shows="depends_on=[charge_order, reserve_stock]: runs once both succeeded",
        result=ship,
        expected=Expected(status=SUCCESSFUL),
        after=(charge_stop, reserve_stop),
    )
    return [charge_stop, reserve_stop, ship_stop]


def _failure_stops() -> list[Stop]:
    failing = Stop(
        label="always_fails(17)",
        shows="raises ValueError on its only attempt",
        result=tasks.always_fails.enqueue(17),
        expected=Expected(status=FAILED, errors=("ValueError",)),
    )
    return [
        Stop(
            label="flaky()",
            shows="max_attempts=3, retry_delay=0.2 s: fails twice, then succeeds",
            result=tasks.flaky.enqueue(),
            expected=Expected(status=SUCCESSFUL, attempts=3, errors=("ConnectionError",) * 2),
        ),
        failing,
        Stop(
            label="publish_catalogue()",
            shows="depends_on=[always_fails]: cancelled when that fails",
            result=tasks.publish_catalogue.using(depends_on=[failing.result]).enqueue(),
            expected=Expected(status=FAILED, attempts=0, errors=("DependencyFailed",)),
            after=(failing,),
        ),
        Stop(
            label="overrun(5)",
            shows="timeout=1: its process is killed after one second",
            result=tasks.overrun.enqueue(5),
            expected=Expected(status=FAILED, errors=("TimeoutError",)),
            announce_start=True,
        ),
    ]


def _report_stops() -> list[Stop]:
    *earlier, current = _recent_months(4)
    batch = taskmill.enqueue_many(tasks.sales_report, [((month,), {}) for month in earlier])
    stops = [
        Stop(
            label=f'sales_report("{month}")',
            shows='queue "reports", priority 10; via taskmill.enqueue_many',
            result=result,
            expected=Expected(status=SUCCESSFUL),
        )
        for month, result in zip(earlier, batch, strict=True)
    ]
    urgent = Stop(
        label=f'sales_report("{current}")',
        shows=".using(priority=50): enqueued late, claimed first",
        result=tasks.sales_report.using(priority=50).enqueue(current),
        expected=Expected(status=SUCCESSFUL, claimed_first=True),
    )
    return [*stops, urgent]


def _housekeeping_stops() -> list[Stop]:
    return [
        Stop(
            label='fetch_rates("EUR")',
            shows="an async def task",
            result=tasks.fetch_rates.enqueue("EUR"),
            expected=Expected(status=SUCCESSFUL),
        ),
        Stop(
            label="rebuild_search_index()",
            shows="unique=True: enqueued twice, one result",
            result=tasks.rebuild_search_index.enqueue(),
            expected=Expected(status=SUCCESSFUL),
            duplicate=tasks.rebuild_search_index.enqueue(),
        ),
    ]


def _long_stops() -> list[Stop]:
    return [
        Stop(
            label=f"import_catalogue({CATALOGUE_PRODUCTS})",
            shows="set_progress(), print and logging: stored as it runs, shown live",
            result=tasks.import_catalogue.enqueue(CATALOGUE_PRODUCTS),
            expected=Expected(status=SUCCESSFUL),
            live_output=True,
        ),
        Stop(
            label=f"export_orders({EXPORT_BATCHES})",
            shows=f"taskmill.cancel() at {CANCEL_AT:.0%}; stops via context.is_cancelled()",
            result=tasks.export_orders.enqueue(EXPORT_BATCHES),
            expected=Expected(status=FAILED, errors=("TaskCancelled",), stopped_by_itself=True),
            live_output=True,
            cancel_at=CANCEL_AT,
        ),
    ]


def _recent_months(count: int) -> list[str]:
    """Return the last `count` months as "YYYY-MM", oldest first, this month last."""
    today = timezone.localdate()
    index = today.year * 12 + today.month - 1
    return [f"{i // 12}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def error_class(error: TaskError) -> str:
    """Return the class name of a stored error, without its module."""
    return error.exception_class_path.rsplit(".", 1)[-1]


def last_error_class(result: TaskResult[..., Any]) -> str | None:
    """Return the class name of a result's last error, or None if it has none."""
    return error_class(result.errors[-1]) if result.errors else None


def stopped_by_itself(result: TaskResult[..., Any]) -> bool:
    """Tell whether a cancelled task saw the cancel (context.is_cancelled()) and stopped at a
    point of its choosing: export_orders logs it, and its captured output keeps the line."""
    return any(STOPPED_CLEANLY in line.text for line in taskmill.logs(result))


def problems_of(stop: Stop, first_start: datetime | None) -> list[str]:
    """Return what differs from the stop's expectations, one sentence each."""
    result, expected = stop.result, stop.expected
    found = []
    if result.status != expected.status:
        found.append(f"status {result.status}, expected {expected.status}")
    if result.attempts != expected.attempts:
        found.append(f"{result.attempts} attempt(s), expected {expected.attempts}")
    errors = tuple(error_class(error) for error in result.errors)
    if errors != expected.errors:
        found.append(f"errors {list(errors)}, expected {list(expected.errors)}")
    if stop.duplicate is not None and stop.duplicate.id != result.id:
        found.append(f"its second enqueue made another result, {stop.duplicate.id}")
    if expected.stopped_by_itself and not stopped_by_itself(result):
        found.append("was killed instead of stopping by itself")
    found.extend(_timing_problems(stop, first_start))
    return [f"{stop.label}: {problem}" for problem in found]


def _timing_problems(stop: Stop, first_start: datetime | None) -> list[str]:
    result, expected = stop.result, stop.expected
    started = result.started_at
    if started is None:
        return []
    found = []
    for dependency in stop.after:
        dependency_finished = dependency.result.finished_at
        if dependency_finished is None or started < dependency_finished:
            found.append(f"started before {dependency.label} had finished")
    run_after = result.task.run_after
    if run_after is not None and started < run_after - CLOCK_TOLERANCE:
        found.append(f"started at {started:%X.%f}, before its run_after {run_after:%X.%f}")
    if expected.claimed_first and first_start is not None and started > first_start:
        found.append("another task started before it despite its higher priority")
    return found
