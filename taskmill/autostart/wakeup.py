"""The in-process wake-up: a task enqueued in the server process that keeps the worker wakes
it (SIGUSR1) as soon as the enqueue commits, on every database. A rolled-back enqueue wakes
nothing; processes without a keeper never connect the receiver, so they pay nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.tasks import TaskResult, task_backends
from django.tasks.signals import task_enqueued

from .keeper import current_keeper


def wake_after_commit(sender: type, task_result: TaskResult[..., Any], **kwargs: object) -> None:
    """Wake this process's worker once the enqueue's transaction commits (now, outside one)."""
    keeper = current_keeper()
    if keeper is None or not keeper.serves(task_result.backend, task_result.task.queue_name):
        return
    database = getattr(task_backends[task_result.backend], "database_alias", None)
    if isinstance(database, str):
        transaction.on_commit(keeper.wake, using=database)


def connect_wakeup() -> None:
    task_enqueued.connect(wake_after_commit, dispatch_uid="taskmill.autostart.wakeup")
