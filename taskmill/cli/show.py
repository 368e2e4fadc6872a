"""`taskmill show`: one task in full (fields, errors with tracebacks, progress, links), and
following its progress until it finishes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.utils import timezone

from taskmill.masking import shown_arguments
from taskmill.models import TaskRecord
from taskmill.presentation import duration_text, progress_bar
from taskmill.routers import queue_databases
from taskmill.states import is_finished

from .table import format_table
from .terminal import printable

TIME_FIELDS = ("enqueued_at", "run_after", "started_at", "last_attempted_at", "finished_at")


def follow_progress(
    record: TaskRecord,
    write: Callable[[str], None],
    *,
    poll_interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> TaskRecord:
    """Write the progress line each time it changes, until the task finishes; return the
    finished row. Reads TaskRecord.progress, which the worker updates while the task runs."""
    shown: str | None = None
    database = record._state.db or queue_databases()[0]
    while True:
        line = f"{record.state}  {printable(progress_bar(record.progress))}"
        if line != shown:
            write(line)
            shown = line
        if is_finished(record.state):
            return record
        sleep(poll_interval)
        fresh = TaskRecord.objects.using(database).filter(id=record.id).first()
        if fresh is None:
            return record
        record = fresh


def describe(record: TaskRecord, *, as_data: bool) -> dict[str, Any] | str:
    """Return everything about a task, as JSON-ready data or as text for people."""
    dependencies = list(record.dependencies.order_by("id").values("id", "task_path", "state"))
    retries = list(record.retries.order_by("id").values_list("id", flat=True))
    data: dict[str, Any] = {
        "id": str(record.id),
        "task_path": record.task_path,
        "backend": record.backend,
        "queue_name": record.queue_name,
        "priority": record.priority,
        "state": record.state,
        "args": shown_arguments(record.args),
        "kwargs": shown_arguments(record.kwargs),
        **{name: getattr(record, name) for name in TIME_FIELDS},
        "attempts": record.attempts,
        "max_attempts": record.options.get("max_attempts"),
        "worker_ids": record.worker_ids,
        "handed_back": record.handed_back,
        "progress": record.progress,
        "return_value": record.return_value,
        "errors": record.errors,
        "dependencies": [{**d, "id": str(d["id"])} for d in dependencies],
        "retry_of": None if record.retry_of_id is None else str(record.retry_of_id),
        "retries": [str(retry_id) for retry_id in retries],
        "cancel_requested_at": record.cancel_requested_at,
    }
    return data if as_data else _text(data)


def _text(data: dict[str, Any]) -> str:
    from .inspect import stamp

    now = timezone.now()
    fields: list[tuple[str, object]] = [
        ("id", data["id"]),
        ("task", data["task_path"]),
        ("state", data["state"]),
        ("queue", f"{data['queue_name']} (priority {data['priority']}, backend {data['backend']})"),
        ("args", data["args"]),
        ("kwargs", data["kwargs"]),
        *(
            (name.removesuffix("_at").replace("_", " "), stamp(data[name], now))
            for name in TIME_FIELDS
        ),
        ("attempts", f"{data['attempts']} of {data['max_attempts'] or '?'}"),
        ("workers", ", ".join(data["worker_ids"]) or "-"),
        ("progress", progress_bar(data["progress"])),
        ("return value", data["return_value"]),
    ]
    if data["started_at"] and data["finished_at"]:
        fields.append(("duration", duration_text(data["finished_at"] - data["started_at"])))
    for note in data["handed_back"]:
        fields.append(
            (
                "handed back",
                f"attempt {note['attempt']} by {note['worker_id']} at "
                f"{note['handed_back_at']} (stopped by a shutdown; not counted)",
            )
        )
    if data["cancel_requested_at"]:
        fields.append(("cancel asked", stamp(data["cancel_requested_at"], now)))
    if data["retry_of"]:
        fields.append(("retry of", data["retry_of"]))
    if data["retries"]:
        fields.append(("retried as", ", ".join(data["retries"])))
    width = max(len(label) for label, _ in fields)
    # Values come from the task (arguments, result, progress message): shown as text.
    lines = [f"{label.ljust(width)}  {printable(value)}" for label, value in fields]
    if data["dependencies"]:
        rows = [(d["id"], d["task_path"], d["state"]) for d in data["dependencies"]]
        lines += ["", "Depends on:", *format_table(["id", "task", "state"], rows)]
    for error in data["errors"]:
        lines += [
            "",
            f"Error on attempt {printable(error.get('attempt', '?'))}: "
            f"{printable(error.get('exception_class_path', ''))}",
            printable(str(error.get("traceback", "")).rstrip(), keep_newlines=True),
        ]
    return "\n".join(lines)
