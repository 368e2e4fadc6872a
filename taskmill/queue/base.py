"""Queue: the ABC every dialect implements, and the ORM code they share.

Enqueue side: insert records (with de-duplication by unique key and dependency links) and wake
workers. Worker side: claim (dialect SQL), then finish, release, heartbeat and rescue, every
write after a claim fenced by its Lease.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from traceback import format_exception_only
from typing import Any, Final
from uuid import UUID

from django.db import IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Max, Value
from django.utils import timezone

from ..exceptions import WorkerLost
from ..models import LogChunk, TaskRecord, TaskRecordQuerySet, Worker
from ..outcomes import AttemptError, Outcome, OutcomeKind, Transition, next_transition
from ..results import StoredError, cancelled_error
from ..retention import seconds_to_keep
from ..states import ACTIVE_STATES, State, is_finished
from .clock import DatabaseNow
from .graph import INSERT_BATCH_SIZE, DependencyGraph
from .lease import ClaimRequest, Lease
from .session_lock import SessionLock
from .waiter import Waiter

logger = logging.getLogger(__name__)

# A duplicate may finish (and free its unique key) between our failed INSERT and our SELECT;
# then inserting again succeeds. Three tries make a livelock practically impossible.
UNIQUE_INSERT_TRIES: Final = 3
# Log chunks are up to 64K characters: 20 stay far below MySQL's default max_allowed_packet.
LOG_BATCH_SIZE: Final = 20


class Queue(ABC):
    """The queue stored in one database alias."""

    def __init__(self, database_alias: str) -> None:
        self.database_alias = database_alias
        self.graph = DependencyGraph(database_alias, self.notify)

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.database_alias]

    def insert(
        self,
        records: Sequence[TaskRecord],
        dependencies: Sequence[Sequence[str]] = (),
    ) -> list[TaskRecord]:
        """Insert new records and their dependency links; return what now stands for each.

        dependencies[i] lists the result ids records[i] waits for; it sets the record's first
        state. A record whose unique key is held by an active task is not inserted; the
        active task's record is returned in its place.

        Raise TaskResultDoesNotExist if a dependency id names no task.
        """
        using = self.database_alias
        with transaction.atomic(using=using):
            linked = [
                self.graph.lock_dependencies(record, ids)
                for record, ids in zip(records, dependencies, strict=False)
            ]
            plain = [record for record in records if record.unique_key is None]
            for start in range(0, len(plain), INSERT_BATCH_SIZE):
                TaskRecord.objects.using(using).bulk_create(
                    plain[start : start + INSERT_BATCH_SIZE]
                )
            stored = {
                id(record): self._insert_unique(record)
                for record in records
                if record.unique_key is not None
            }
            final = [stored.get(id(record), record) for record in records]
            self.graph.link(final, records, linked)
            self.notify(
                {
                    record.queue_name
                    for record, original in zip(final, records, strict=True)
                    if record is original and record.state == State.READY
                }
            )
        return final

    def _insert_unique(self, record: TaskRecord) -> TaskRecord:
        manager = TaskRecord.objects.using(self.database_alias)
        for _ in range(UNIQUE_INSERT_TRIES):
            try:
                # A savepoint, so a conflict doesn't abort the caller's transaction.
                with transaction.atomic(using=self.database_alias):
                    manager.bulk_create([record])
            except IntegrityError:
                existing = manager.filter(
                    unique_key=record.unique_key, state__in=ACTIVE_STATES
                ).first()
                if existing is not None:
                    return existing
            else:
                return record
        raise IntegrityError(
            f"Could not insert task {record.task_path} with unique key {record.unique_key!r}: "
            "the key kept conflicting with a task that finished meanwhile."
        )

    def cancel(self, task_id: UUID) -> bool | None:
        """Cancel a queued task, or flag a running one for its worker to kill.

        Return True if done or asked, False if the task had finished, None if it's unknown.
        """
        with transaction.atomic(using=self.database_alias):
            record = (
                TaskRecord.objects.using(self.database_alias)
                .select_for_update()
                .filter(id=task_id)
                .first()
            )
            if record is None:
                return None
            if is_finished(record.state):
                return False
            if record.state == State.RUNNING:
                # The worker owning the lease sees the flag on its next tick and kills the
                # child; recording the outcome stays fenced by that lease.
                record.cancel_requested_at = timezone.now()
                record.save(update_fields=["cancel_requested_at"])
                self.notify_cancel()
                return True
            self.graph.finish_unstarted(record, State.CANCELLED, cancelled_error(record.attempts))
            return True

    def notify_cancel(self) -> None:  # noqa: B027 - a hook: dialects without push do nothing
        """Wake workers so they act on a cancel request; polling covers dialects without push."""

    def notify(self, queue_names: Iterable[str]) -> None:  # noqa: B027 - a hook, like notify_cancel
        """Wake workers serving these queues once the current transaction commits.

        Polling finds every task anyway; dialects that can push a wake-up override this.
        """

    # -- Worker side ------------------------------------------------------------------------

    def prepare_worker_connection(self) -> None:  # noqa: B027 - a hook for dialects
        """Adjust the worker's own connection before its first claim (dialects override)."""

    @abstractmethod
    def _claim(self, request: ClaimRequest) -> list[TaskRecord]:
        """Atomically move up to request.limit due ready tasks to running under the worker's
        lease; return their rows as they now stand.

        Must never hand one task to two callers, whatever the number of processes and hosts.
        """

    def claim(self, request: ClaimRequest) -> list[TaskRecord]:
        """Claim due tasks, highest priority first; return them as running."""
        if request.limit < 1 or not request.queue_names:
            return []
        records = self._claim(request)
        return sorted(records, key=lambda r: (-r.priority, r.run_after, r.id))

    def quoted_names(self) -> tuple[str, dict[str, str]]:
        """The task table's name and its columns by field name, quoted for raw SQL."""
        quote = self.connection.ops.quote_name
        meta = TaskRecord._meta
        columns = {f.name: quote(str(f.column)) for f in meta.concrete_fields}
        return quote(str(meta.db_table)), columns

    def _fenced(self, lease: Lease) -> TaskRecordQuerySet:
        # The whole fence: a rescued task has a new owner or attempt number, so a worker that
        # comes back late matches nothing and can't overwrite the newer attempt.
        return TaskRecord.objects.using(self.database_alias).filter(
            id=lease.task_id,
            state=State.RUNNING,
            lease_owner=lease.worker_id,
            attempts=lease.attempt,
        )

    def finish(
        self,
        lease: Lease,
        transition: Transition,
        *,
        prior_errors: list[StoredError],
        now: datetime,
    ) -> dict[str, Any] | None:
        """Record how an attempt ended; return the fields written, or None (writing nothing)
        if the lease was lost."""
        errors = list(prior_errors)
        if transition.error is not None:
            errors.append(
                StoredError(
                    exception_class_path=transition.error.exception_class_path,
                    traceback=transition.error.traceback,
                    attempt=lease.attempt,
                )
            )
        changes: dict[str, Any] = {
            "state": transition.state,
            "errors": errors,
            "lease_owner": None,
            "lease_expires_at": None,
            "cancel_requested_at": None,
        }
        if transition.is_final:
            changes.update(
                finished_at=now,
                return_value=transition.return_value,
                unique_key=None,
                expires_at=now
                + timedelta(seconds=seconds_to_keep(lease.result_ttl, transition.state)),
            )
        else:
            changes["run_after"] = transition.run_after
        if not transition.is_final:
            written = self._fenced(lease).update(**changes)
        else:
            # The common case in one statement: a final outcome of a task nobody waits for.
            # has_dependants is set under the row's lock, so it can't change unseen here.
            written = self._fenced(lease).filter(has_dependants=False).update(**changes)
            if not written:
                written = self._finish_waited_on(lease, changes)
        if not written:
            # The refused outcome is logged in full: it is recorded nowhere else.
            logger.warning(
                "lease lost task_id=%s worker_id=%s attempt=%s state=%s error=%s: not recorded",
                lease.task_id,
                lease.worker_id,
                lease.attempt,
                transition.state,
                transition.error.exception_class_path if transition.error else "-",
            )
            return None
        return changes

    def _finish_waited_on(self, lease: Lease, changes: dict[str, Any]) -> int:
        using = self.database_alias
        with transaction.atomic(using=using):
            written = self._fenced(lease).update(**changes)
            if written:
                finished = (
                    TaskRecord.objects.using(using)
                    .only("id", "state", "task_path")
                    .get(id=lease.task_id)
                )
                self.graph.settle(finished)
        return written

    def release(self, lease: Lease, *, prior_worker_ids: list[str]) -> bool:
        """Hand a task back to the queue unrun (graceful shutdown): the attempt isn't counted."""
        updated = self._fenced(lease).update(
            state=State.READY,
            attempts=lease.attempt - 1,
            worker_ids=prior_worker_ids,
            lease_owner=None,
            lease_expires_at=None,
        )
        return bool(updated)

    def next_log_seq(self, task_id: UUID, attempt: int) -> int:
        """Return the first free sequence number of an attempt's log chunks."""
        last = (
            LogChunk.objects.using(self.database_alias)
            .filter(task_id=task_id, attempt=attempt)
            .aggregate(last=Max("seq"))["last"]
        )
        return 0 if last is None else last + 1

    def write_log_chunks(self, chunks: Sequence[LogChunk]) -> None:
        """Store captured output. Not fenced: output stays true even from a lost lease."""
        # A batch written whose acknowledgement was lost is written again: the copies are
        # identical and the unique (task, attempt, seq) index drops them.
        LogChunk.objects.using(self.database_alias).bulk_create(
            chunks, batch_size=LOG_BATCH_SIZE, ignore_conflicts=True
        )

    def set_progress(self, lease: Lease, progress: Mapping[str, Any]) -> bool:
        """Store a running task's progress report, fenced like every write after a claim."""
        return bool(self._fenced(lease).update(progress=progress))

    def register_worker(self, worker: Worker) -> None:
        """Create or refresh the worker's row, stamped with the database's clock."""
        worker.started_at = worker.last_heartbeat_at = timezone.now()
        worker.save(using=self.database_alias)
        Worker.objects.using(self.database_alias).filter(id=worker.id).update(
            started_at=DatabaseNow(), last_heartbeat_at=DatabaseNow()
        )

    def heartbeat(self, worker_id: str, lease_seconds: float) -> int:
        """Extend the worker's leases and stamp its row; return how many tasks it holds."""
        using = self.database_alias
        Worker.objects.using(using).filter(id=worker_id).update(last_heartbeat_at=DatabaseNow())
        return (
            TaskRecord.objects.using(using)
            .filter(lease_owner=worker_id, state=State.RUNNING)
            .update(lease_expires_at=DatabaseNow() + Value(timedelta(seconds=lease_seconds)))
        )

    def deregister_worker(self, worker_id: str) -> None:
        Worker.objects.using(self.database_alias).filter(id=worker_id).delete()

    def cancel_requests(self, worker_id: str) -> list[UUID]:
        """Return the ids of this worker's running tasks that someone asked to cancel."""
        return list(
            TaskRecord.objects.using(self.database_alias)
            .filter(lease_owner=worker_id, state=State.RUNNING, cancel_requested_at__isnull=False)
            .values_list("id", flat=True)
        )

    def rescue_expired(self, *, limit: int = 100) -> list[tuple[UUID, State]]:
        """Retry or fail running tasks whose worker stopped renewing the lease.

        Return (task id, new state) for each task rescued.
        """
        using = self.database_alias
        rescued: list[tuple[UUID, State]] = []
        with transaction.atomic(using=using):
            expired = list(
                TaskRecord.objects.using(using)
                .select_for_update(
                    skip_locked=self.connection.features.has_select_for_update_skip_locked
                )
                .filter(state=State.RUNNING, lease_expires_at__lt=DatabaseNow())
                .order_by("lease_expires_at")[:limit]
            )
            for record in expired:
                state = self._rescue_one(record)
                if state is not None:
                    rescued.append((record.id, state))
        return rescued

    def _rescue_one(self, record: TaskRecord) -> State | None:
        lease = Lease.of(record)
        error = WorkerLost(
            f"worker {record.lease_owner} stopped renewing its lease on attempt "
            f"{record.attempts}; the lease expired at {record.lease_expires_at}"
        )
        outcome = Outcome(
            kind=OutcomeKind.WORKER_LOST,
            error=AttemptError(
                exception_class_path=f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
                traceback="".join(format_exception_only(error)),
            ),
        )
        transition = next_transition(
            attempt=record.attempts, options=record.options, outcome=outcome, now=timezone.now()
        )
        if self.finish(lease, transition, prior_errors=record.errors, now=timezone.now()) is None:
            return None
        logger.warning(
            "rescued task_id=%s worker_id=%s attempt=%s state=%s",
            record.id,
            record.lease_owner,
            record.attempts,
            transition.state,
        )
        return transition.state

    def forget_dead_workers(self, older_than: timedelta) -> int:
        """Delete worker rows silent for longer than older_than; return how many."""
        deleted, _ = (
            Worker.objects.using(self.database_alias)
            .filter(last_heartbeat_at__lt=DatabaseNow() - Value(older_than))
            .delete()
        )
        return deleted

    def open_waiter(self) -> Waiter:
        """Return what the worker sleeps on between claims (dialects push or poll)."""
        return Waiter()

    @abstractmethod
    def open_session_lock(self, name: str, *, idle_timeout: float) -> SessionLock:
        """Return an unheld lock named `name`, one per database.

        Its holder must call is_held() more often than every idle_timeout seconds: a session
        silent for longer may be closed by the server, so a host that vanished without
        closing its connection frees the lock after about that long.
        """

    def close_connections(self) -> None:
        """Drop the worker's connection so the next query reconnects (after a failure)."""
        self.connection.close()
