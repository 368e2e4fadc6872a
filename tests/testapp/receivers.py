"""Record task_started / task_finished signals, so tests can see what children sent (and
print the latter, for the output tests).

Only where TASKMILL_TEST_RECORD_SIGNALS=1 (the signal tests' workers): elsewhere the extra
writes would only slow the suite down.
"""

from __future__ import annotations

import os
from typing import Any

from django.dispatch import receiver
from django.tasks import TaskResult
from django.tasks.signals import task_finished, task_started

from .models import SignalRecord


def _record(name: str, sender: type, task_result: TaskResult[Any, Any]) -> None:
    if os.environ.get("TASKMILL_TEST_RECORD_SIGNALS") != "1":
        return
    SignalRecord.objects.create(
        result_id=task_result.id,
        signal=name,
        status=task_result.status,
        sender=f"{sender.__module__}.{sender.__qualname__}",
    )


@receiver(task_started, dispatch_uid="testapp.record_started")
def record_started(sender: type, task_result: TaskResult[Any, Any], **kwargs: Any) -> None:
    _record("started", sender, task_result)


@receiver(task_finished, dispatch_uid="testapp.record_finished")
def record_finished(sender: type, task_result: TaskResult[Any, Any], **kwargs: Any) -> None:
    _record("finished", sender, task_result)


@receiver(task_finished, dispatch_uid="testapp.print_finished")
def print_finished(sender: type, task_result: TaskResult[Any, Any], **kwargs: Any) -> None:
    # Where TASKMILL_TEST_PRINT_FINISHED=1: output written between tasks, which must reach
    # the worker's console and no task's captured output.
    if os.environ.get("TASKMILL_TEST_PRINT_FINISHED") == "1":
        print(f"announced {task_result.id}")  # noqa: T201 - the output is what is tested
