"""Helpers for the test suites of projects that use Taskmill."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, Task, TaskResult

from .conf import get_settings
from .models import TaskRecord
from .results import to_task_result
from .routers import queue_databases
from .scheduler import Scheduler, missed_after
from .schedules import declared_specs
from .worker.setup import build_options
from .worker.supervisor import Supervisor


def run_until_empty(
    *, backend: str = DEFAULT_TASK_BACKEND_ALIAS, queues: Sequence[str] | None = None
) -> int:
    """Run every due task in this process, one at a time, until none is due; return how many
    attempts ran.

    Uses the solo pool, so it works inside a test's transaction; timeouts are not enforced.
    """
    options = build_options(
        backend_alias=backend,
        queues=queues,
        concurrency=1,
        max_tasks_per_child=None,
        burst=True,
        grace=0.0,
        pool="solo",
    )
    supervisor = Supervisor(options)
    supervisor.run()
    return supervisor.attempts_recorded


def assert_enqueued(
    task: Task[..., Any],
    *,
    args: Sequence[object] | None = None,
    kwargs: dict[str, object] | None = None,
    count: int | None = None,
) -> list[TaskResult[..., Any]]:
    """Assert that task was enqueued (with these JSON-encoded args/kwargs, this many times);
    return the matching results, oldest first.

    Raise AssertionError listing what was enqueued instead.
    """
    records = TaskRecord.objects.using(queue_databases()[0]).filter(task_path=task.module_path)
    found = [
        r
        for r in records.order_by("enqueued_at", "id")
        if (args is None or r.args == list(args)) and (kwargs is None or r.kwargs == kwargs)
    ]
    if (count is None and not found) or (count is not None and len(found) != count):
        seen = [(r.args, r.kwargs) for r in records.order_by("enqueued_at", "id")[:20]]
        wanted = "" if count is None else f" {count} time(s)"
        raise AssertionError(
            f"{task.module_path} was enqueued {len(found)} time(s) with args={args!r} "
            f"kwargs={kwargs!r}, expected{wanted or ' at least once'}; enqueued calls: {seen}"
        )
    return [to_task_result(record) for record in found]


def _scheduler(backend: str) -> Scheduler:
    options = build_options(
        backend_alias=backend,
        queues=None,
        concurrency=1,
        max_tasks_per_child=None,
        burst=True,
        grace=0.0,
        pool="solo",
    )
    return Scheduler(
        backend_alias=backend,
        database_alias=options.database_alias,
        missed_after=missed_after(get_settings()),
    )


def sync_schedules(
    *, now: datetime | None = None, backend: str = DEFAULT_TASK_BACKEND_ALIAS
) -> None:
    """Sync the Schedule rows from the declared schedules, as a worker does when it starts at
    `now` (default: the database's clock)."""
    _scheduler(backend).sync(declared_specs(get_settings().SCHEDULE), now=now)


def enqueue_due_schedules(
    *, now: datetime | None = None, backend: str = DEFAULT_TASK_BACKEND_ALIAS
) -> int:
    """Enqueue what the schedules have due at `now` (default: the database's clock), as the
    leading worker does; return how many runs were enqueued."""
    return _scheduler(backend).enqueue_due(now).enqueued
