"""Small helpers shared by the worker integration tests."""

import json
from pathlib import Path
from typing import Any

from taskmill.models import LogChunk, TaskRecord

SHORT_LEASE = {"LEASE_SECONDS": 2, "HEARTBEAT_SECONDS": 0.5}


def short_lease_env() -> dict[str, str]:
    """Worker environment with a 2 s lease, so crash rescue happens within seconds."""
    return {"TASKMILL_TEST_SETTINGS": json.dumps(SHORT_LEASE)}


def record(result_id: str) -> TaskRecord:
    return TaskRecord.objects.get(id=result_id)


def state_of(result_id: str) -> str:
    return str(TaskRecord.objects.values_list("state", flat=True).get(id=result_id))


def error_paths(result_id: str) -> list[str]:
    return [error["exception_class_path"] for error in record(result_id).errors]


def started_pids(gate: Path) -> list[int]:
    """Pids of the child processes that reached a block_until_released gate."""
    return [int(p.name.split("-", 1)[1]) for p in gate.glob("started-*")]


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is pid (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def is_alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X")


def summary(result_id: str) -> dict[str, Any]:
    """A compact view of a record for assertion messages."""
    row = record(result_id)
    return {
        "state": row.state,
        "attempts": row.attempts,
        "errors": error_paths(result_id),
        "worker_ids": row.worker_ids,
    }


def captured(result_id: str) -> dict[str, str]:
    """Everything stored for a task, joined per stream, in order."""
    joined: dict[str, str] = {}
    for chunk in LogChunk.objects.filter(task__id=result_id).order_by("attempt", "seq"):
        joined[chunk.stream] = joined.get(chunk.stream, "") + chunk.text
    return joined
