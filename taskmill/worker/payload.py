"""The JSON messages between the supervisor and its children. No pickle: only JSON crosses."""

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, Final
from uuid import UUID

from ..models import TaskRecord
from ..outcomes import Outcome

RECORD_FIELDS: Final = (
    "backend",
    "task_path",
    "queue_name",
    "priority",
    "state",
    "args",
    "kwargs",
    "options",
    "attempts",
    "worker_ids",
    "errors",
    "return_value",
    "progress",
)
TIME_FIELDS: Final = ("enqueued_at", "run_after", "started_at", "last_attempted_at", "finished_at")


def record_to_json(record: TaskRecord) -> dict[str, Any]:
    """Return what a child needs to run and describe a claimed record."""
    data: dict[str, Any] = {name: getattr(record, name) for name in RECORD_FIELDS}
    data["id"] = str(record.id)
    for name in TIME_FIELDS:
        value: datetime | None = getattr(record, name)
        data[name] = value.isoformat() if value is not None else None
    return data


def record_from_json(data: dict[str, Any]) -> TaskRecord:
    """Rebuild an unsaved TaskRecord from record_to_json's output."""
    values: dict[str, Any] = {name: data[name] for name in RECORD_FIELDS}
    values["id"] = UUID(data["id"])
    for name in TIME_FIELDS:
        raw = data[name]
        values[name] = datetime.fromisoformat(raw) if raw is not None else None
    # Positional arguments, one per column, take Model.__init__'s fast path: a child builds
    # two records per task, and keyword arguments cost twice as much.
    # (The stubs' plugin types positional model arguments as the first field's, hence Any.)
    model: Any = TaskRecord
    record: TaskRecord = model(
        *[values[name] if name in values else default() for name, default in _columns()]
    )
    return record


@cache
def _columns() -> list[tuple[str, Callable[[], Any]]]:
    """Each column's attribute name with its default, in the order Model.__init__ takes them."""
    return [(field.attname, field.get_default) for field in TaskRecord._meta.concrete_fields]


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(raw: bytes) -> dict[str, Any]:
    message = json.loads(raw)
    if not isinstance(message, dict) or "type" not in message:
        raise ValueError(f"malformed worker message: {raw[:200]!r}")
    return message


def run_message(tasks: list[tuple[int, TaskRecord]]) -> bytes:
    """Hand a child tasks to run in this order, each with its dispatch sequence number."""
    return encode(
        {"type": "run", "tasks": [{"seq": seq, "record": record_to_json(r)} for seq, r in tasks]}
    )


def drop_message(seqs: list[int]) -> bytes:
    """Ask a child to forget tasks it holds and hasn't begun."""
    return encode({"type": "drop", "seqs": seqs})


def finished_message(records: list[TaskRecord]) -> bytes:
    return encode({"type": "finished", "records": [record_to_json(r) for r in records]})


def outcome_message(task_id: str, outcome: Outcome) -> bytes:
    return encode({"type": "outcome", "id": task_id, "outcome": outcome.to_json()})


def progress_message(task_id: str, report: Mapping[str, Any]) -> bytes:
    return encode({"type": "progress", "id": task_id, "progress": report})


STOP_MESSAGE: Final = encode({"type": "stop"})
# Wakes a child the supervisor held (see pipeline.Slot) without asking anything of it.
GO_MESSAGE: Final = encode({"type": "go"})
