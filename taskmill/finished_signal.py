"""Sending Django's task signals robustly, and task_finished for tasks that end outside a
worker's run (cancelled while queued or blocked, with the dependants cancelled along), in the
process that made the change.

A worker sends task_started and announces what it records through a child
(worker/runner.py), never in the supervisor, which runs no user code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.tasks import TaskResult, task_backends
from django.tasks.signals import task_finished

from .models import TaskRecord
from .results import to_task_result

logger = logging.getLogger(__name__)


def send_robust(signal: Any, result: TaskResult[..., Any]) -> None:
    """Send signal for result; a receiver that raises is logged and stops nothing."""
    backend_class = type(task_backends[result.backend])
    for receiver, response in signal.send_robust(sender=backend_class, task_result=result):
        if isinstance(response, Exception):
            logger.error(
                "signal receiver failed receiver=%r task_id=%s",
                receiver,
                result.id,
                exc_info=response,
            )


def send_task_finished(records: Iterable[TaskRecord]) -> None:
    """Send task_finished for each record, as recorded; one that can't be described is
    logged and the others are still sent."""
    for record in records:
        try:
            result = to_task_result(record)
        except Exception:
            logger.exception("could not describe finished task task_id=%s", record.id)
            continue
        send_robust(task_finished, result)
