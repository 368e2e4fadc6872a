"""Record every task_started / task_finished signal, so tests can see what children sent."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver
from django.tasks import TaskResult
from django.tasks.signals import task_finished, task_started

from .models import SignalRecord


def _record(name: str, sender: type, task_result: TaskResult[Any, Any]) -> None:
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
