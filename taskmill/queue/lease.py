"""The lease: the fence every write after a claim goes through."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from ..conf import get_settings
from ..models import TaskRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """The fence for writes after a claim: this task, this worker, this attempt."""

    task_id: UUID
    worker_id: str
    attempt: int
    result_ttl: float

    @classmethod
    def of(cls, record: TaskRecord) -> Lease:
        ttl = (record.options or {}).get("result_ttl")
        return cls(
            task_id=record.id,
            worker_id=record.lease_owner or "",
            attempt=record.attempts,
            result_ttl=float(ttl) if ttl is not None else get_settings().DEFAULT_RESULT_TTL,
        )
