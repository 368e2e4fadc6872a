"""The JSON messages between the supervisor and its children. No pickle: only JSON crosses."""

import json
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, Final
from uuid import UUID

from ..models import TaskRecord, build_record
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


def record_text(record: TaskRecord) -> bytes:
    """Return record_to_json's output as JSON text: made once per claimed task, it goes to a
    child in the run message and again, with what finishing changed, in the finished one."""
    return encode(record_to_json(record))


def record_from_json(data: dict[str, Any], changes: dict[str, Any] | None = None) -> TaskRecord:
    """Rebuild an unsaved TaskRecord from record_to_json's output, with `changes` (fields
    by name, as record_to_json writes them) applied."""
    if changes:
        data = {**data, **changes}
    columns = {name: data[name] for name in RECORD_FIELDS}
    columns["id"] = UUID(data["id"])
    for name in TIME_FIELDS:
        raw = data[name]
        columns[name] = datetime.fromisoformat(raw) if raw is not None else None
    for name, default in _defaults():
        columns[name] = default() if callable(default) else default
    # Not through Model.__init__: a child rebuilds two records per task (models.build_record).
    return build_record(columns)


@cache
def _defaults() -> list[tuple[str, Any]]:
    """Each column the message leaves out, with its default: a constant (None, "", False),
    or a callable (list) called per record, so that no two records share one list."""
    sent = {"id", *RECORD_FIELDS, *TIME_FIELDS}
    return [
        (
            field.attname,
            field.default
            if field.has_default() and callable(field.default)
            else field.get_default(),
        )
        for field in TaskRecord._meta.concrete_fields
        if field.attname not in sent
    ]


def encode(message: dict[str, Any] | list[Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode(raw: bytes) -> dict[str, Any]:
    message = json.loads(raw)
    if not isinstance(message, dict) or "type" not in message:
        raise ValueError(f"malformed worker message: {raw[:200]!r}")
    return message


def run_message(tasks: list[tuple[int, bytes]]) -> bytes:
    """Hand a child tasks to run in this order, each with its dispatch sequence number and
    its record_text()."""
    # Joined as text: each record was encoded once, when first sent.
    return b'{"type":"run","tasks":[%s]}' % b",".join(
        b'{"seq":%d,"record":%s}' % (seq, text) for seq, text in tasks
    )


def drop_message(seqs: list[int]) -> bytes:
    """Ask a child to forget tasks it holds and hasn't begun."""
    return encode({"type": "drop", "seqs": seqs})


def finished_message(records: list[TaskRecord]) -> bytes:
    """Ask a child to send task_finished for each of these records, as they stand."""
    return recorded_message([(record_text(r), {}) for r in records])


def recorded_message(finished: list[tuple[bytes, Mapping[str, Any]]]) -> bytes:
    """Ask a child to send task_finished for each (record_text() of a claimed record, the
    fields finishing it wrote): the record as it now stands is the claim with those fields."""
    changes = [_changes_json(written) for _, written in finished]
    return b'{"type":"finished","records":[%s],"changes":%s}' % (
        b",".join(text for text, _ in finished),
        encode(changes),
    )


def _changes_json(written: Mapping[str, Any]) -> dict[str, Any]:
    """The written fields a child's record holds, as record_to_json writes them."""
    changes: dict[str, Any] = {name: written[name] for name in RECORD_FIELDS if name in written}
    for name in TIME_FIELDS:
        if name in written:
            value: datetime | None = written[name]
            changes[name] = value.isoformat() if value is not None else None
    return changes


def outcome_message(task_id: str, outcome: Outcome) -> bytes:
    return encode({"type": "outcome", "id": task_id, "outcome": outcome.to_json()})


def progress_message(task_id: str, report: Mapping[str, Any]) -> bytes:
    return encode({"type": "progress", "id": task_id, "progress": report})


STOP_MESSAGE: Final = encode({"type": "stop"})
# Wakes a child the supervisor held (see pipeline.Slot) without asking anything of it.
GO_MESSAGE: Final = encode({"type": "go"})
