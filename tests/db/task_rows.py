"""Put task rows in any state by hand, as workers would have left them (monitoring tests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.tasks import TaskResult
from django.utils import timezone

from taskmill.models import TaskRecord, Worker
from taskmill.states import State
from tests.testapp import tasks


def put(result: TaskResult[..., Any], state: State, **fields: object) -> TaskRecord:
    """Set a result's row to `state` (and fields); return the row."""
    assert TaskRecord.objects.filter(id=result.id).update(state=state, **fields) == 1
    return TaskRecord.objects.get(id=result.id)


def running(*, progress: dict[str, Any] | None = None, **fields: object) -> TaskRecord:
    """A noop task running since a minute ago, with this progress."""
    now = timezone.now()
    values: dict[str, object] = {
        "started_at": now - timedelta(minutes=1),
        "last_attempted_at": now - timedelta(minutes=1),
        "attempts": 1,
        "lease_owner": "worker-1",
        "lease_expires_at": now + timedelta(seconds=30),
        "progress": progress,
    }
    values.update(fields)
    return put(tasks.noop.enqueue(), State.RUNNING, **values)


def finished(
    state: State,
    *,
    at: datetime | None = None,
    took: timedelta = timedelta(seconds=2),
    task: Any = tasks.noop,
    error: str = "ValueError: boom",
    **fields: object,
) -> TaskRecord:
    """A task that finished in `state` at `at` (default: now) after running for `took`."""
    at = at or timezone.now()
    errors = []
    if state != State.SUCCEEDED:
        errors = [
            {
                "exception_class_path": "builtins.ValueError",
                "traceback": f"Traceback (most recent call last):\n  ...\n{error}\n",
                "attempt": 1,
            }
        ]
    values: dict[str, object] = {
        "started_at": at - took,
        "last_attempted_at": at - took,
        "finished_at": at,
        "attempts": 1,
        "errors": errors,
        "unique_key": None,
    }
    values.update(fields)
    return put(task.enqueue(), state, **values)


def worker(worker_id: str = "worker-1", *, beat: datetime | None = None) -> Worker:
    now = timezone.now()
    return Worker.objects.create(
        id=worker_id,
        backend="default",
        host="host-a",
        pid=1234,
        queues=["default"],
        concurrency=2,
        started_at=now - timedelta(hours=1),
        last_heartbeat_at=beat or now,
    )
