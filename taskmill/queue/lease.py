"""The lease: the fence every write after a claim goes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from ..conf import get_settings
from ..models import TaskRecord
from ..row_checks import read_options

# The largest attempt count every database's column holds (PostgreSQL's integer). Claims leave
# a row at this count alone: its `attempts + 1` would overflow and fail the whole claim, so one
# row set by hand would stop every worker. Such a row waits, visible, until someone lowers it.
MAX_STORED_ATTEMPTS: Final = 2**31 - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """The fence for writes after a claim: this task, this worker, this attempt."""

    task_id: UUID
    worker_id: str
    attempt: int
    result_ttl: float
    queue_name: str  # not part of the fence: where a retry is announced

    @classmethod
    def of(cls, record: TaskRecord, options: dict[str, Any] | None = None) -> Lease:
        """The lease a claimed record is under; options are its read_options(), if read."""
        if options is None:
            options = read_options(record.options)[0]
        ttl = options.get("result_ttl")
        return cls(
            task_id=record.id,
            worker_id=record.lease_owner or "",
            attempt=record.attempts,
            result_ttl=float(ttl) if ttl is not None else get_settings().DEFAULT_RESULT_TTL,
            queue_name=record.queue_name,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRequest:
    """What a worker asks of a claim: up to `limit` due tasks of these queues, leased to it.

    Whether a task is due, when its lease ends, and its started_at and last_attempted_at
    stamps all come from the database's clock, so a task never reads as started before its
    run_after.
    """

    worker_id: str
    queue_names: tuple[str, ...]
    limit: int
    lease_seconds: float
