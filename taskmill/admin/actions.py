"""Cancel and retry from the admin: the changelist's actions and the task page's buttons.

Both go through operations.py, are logged in the admin history (LogEntry) and report partial
success in messages. Each needs its own permission: taskmill.cancel_task, taskmill.retry_task.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from django.contrib import messages
from django.http import HttpRequest
from django.tasks import TaskResult

from ..exceptions import NotRetryable, TaskNotRegistered
from ..models import TaskRecord
from ..operations import cancel, retry_task

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

CANCEL_PERMISSION: Final = "taskmill.cancel_task"
RETRY_PERMISSION: Final = "taskmill.retry_task"


def cancel_records(
    model_admin: ModelAdmin[TaskRecord], request: HttpRequest, records: Iterable[TaskRecord]
) -> int:
    """Cancel each task (a running one is killed by its worker); return how many."""
    cancelled, finished = 0, []
    for record in records:
        if cancel(str(record.id)):
            cancelled += 1
            model_admin.log_change(request, record, f"Cancelled (was {record.state}).")
        else:
            finished.append(str(record.id))
    if cancelled:
        model_admin.message_user(
            request,
            f"Cancelled {cancelled} task(s); running ones stop as soon as their worker kills them.",
            messages.SUCCESS,
        )
    if finished:
        model_admin.message_user(
            request,
            f"{len(finished)} task(s) had already finished and were left as they are: "
            + ", ".join(finished),
            messages.WARNING,
        )
    return cancelled


def retry_records(
    model_admin: ModelAdmin[TaskRecord], request: HttpRequest, records: Iterable[TaskRecord]
) -> list[TaskResult[..., Any]]:
    """Enqueue each failed or cancelled task again as a new result; return the new results."""
    again: list[TaskResult[..., Any]] = []
    refused: list[str] = []
    for record in records:
        try:
            result = retry_task(str(record.id))
        except NotRetryable:
            refused.append(f"{record.id} ({record.state})")
        except TaskNotRegistered as error:
            model_admin.message_user(request, f"{record.id}: not retried: {error}", messages.ERROR)
        else:
            again.append(result)
            model_admin.log_change(request, record, f"Retried as {result.id}.")
    if again:
        model_admin.message_user(
            request,
            f"Retried {len(again)} task(s) as new task(s): "
            + ", ".join(result.id for result in again),
            messages.SUCCESS,
        )
    if refused:
        model_admin.message_user(
            request,
            "Only failed or cancelled tasks can be retried; left as they are: "
            + ", ".join(refused),
            messages.WARNING,
        )
    return again
