"""Queue: the ABC every dialect implements, and the ORM code they share.

Enqueue side: inserting records and waking workers is Inserting's (inserting.py); cancel is
here. Worker side: claim (dialect SQL), then finish, release, heartbeat and rescue, every
write after a claim fenced by its Lease.
"""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property, partial
from traceback import format_exception_only
from typing import Any, Final
from uuid import UUID

from django.db import transaction
from django.db.models import Max, Q, Value
from django.utils import timezone

from ..exceptions import InvalidTaskRecord, WorkerLost
from ..finished_signal import send_task_finished
from ..models import LogChunk, TaskRecord, TaskRecordQuerySet, Worker
from ..outcomes import AttemptError, Outcome, OutcomeKind, Transition, next_transition
from ..results import StoredError, StoredHandBack, cancelled_error, error_entry
from ..row_checks import read_errors, read_options, read_worker_ids
from ..states import State, is_finished, state_problem
from .clock import DatabaseNow, read_database_now
from .final_batches import FinalBatches
from .finishing import FINISH_BATCH_SIZE, FinalRow, Finish, changes_for
from .graph import DependencyGraph
from .inserting import Inserting
from .lease import ClaimRequest, Lease
from .rows import RowReader
from .session_lock import SessionLock
from .waiter import Waiter

logger = logging.getLogger(__name__)

# Log chunks are up to 64K characters: 20 stay far below MySQL's default max_allowed_packet.
LOG_BATCH_SIZE: Final = 20


def _unknown_state() -> Q:
    # The gaps between the known states, as ranges: an index led by state (the
    # (state, finished_at) one) can answer them without reading the rows of known states, as
    # `state NOT IN (...)` would, every few seconds, on a table of millions of finished rows.
    known = sorted(State.values)
    gaps = Q(state__lt=known[0]) | Q(state__gt=known[-1])
    for low, high in itertools.pairwise(known):
        gaps |= Q(state__gt=low, state__lt=high)
    return gaps


class Queue(Inserting, FinalBatches, ABC):
    """The queue stored in one database alias."""

    def __init__(self, database_alias: str) -> None:
        self.database_alias = database_alias
        self.graph = DependencyGraph(database_alias, self.made_ready_at)
        # Tasks a worker's queue calls brought to a final state without a child running them
        # to their end (rescued for good, dependants cancelled by a failure): the supervisor
        # takes them (take_finished_aside) to announce task_finished through a child.
        self._finished_aside: list[TaskRecord] = []

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
            finished = self.graph.finish_unstarted(
                record, State.CANCELLED, cancelled_error(record.attempts)
            )
            # In the cancelling process (a request, a command), once the cancel is committed.
            transaction.on_commit(partial(send_task_finished, finished), using=self.database_alias)
            return True

    def notify_cancel(self) -> None:
        """Wake workers so they act on a cancel request; polling covers dialects without push."""

    # -- Worker side ------------------------------------------------------------------------

    def prepare_worker_connection(self) -> None:
        """Adjust the worker's own connection before its first claim (dialects override)."""

    def end_stalled_transactions_after(self, seconds: float) -> None:
        """Have the server end this connection's session should it stay idle inside a
        transaction for longer than seconds (dialects whose server can)."""

    @abstractmethod
    def _claim(self, request: ClaimRequest) -> list[TaskRecord]:
        """Atomically move up to request.limit due ready tasks to running under the worker's
        lease; return their rows as they now stand.

        Must never hand one task to two callers, whatever the number of processes and hosts.
        """

    @cached_property
    def rows(self) -> RowReader:
        """What reads the rows a claim returns into records."""
        return RowReader()

    def _read_claimed(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any]
    ) -> list[TaskRecord]:
        """Run a claim statement that returns the whole rows it claimed; return them."""
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return self.rows.records(cursor, self.database_alias)

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
        owner = Q(lease_owner=lease.worker_id)
        if not lease.worker_id:
            # Only a row written by hand runs without an owner; rescue must still fence it.
            owner |= Q(lease_owner__isnull=True)
        return TaskRecord.objects.using(self.database_alias).filter(
            owner, id=lease.task_id, state=State.RUNNING, attempts=lease.attempt
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
        finish = Finish(lease=lease, transition=transition, prior_errors=prior_errors)
        changes = self._finish_one(finish, changes_for(finish, now))
        self._announce_retries([(finish, changes)])
        return changes

    def finish_many(
        self, finishes: Sequence[Finish], *, now: datetime
    ) -> list[dict[str, Any] | None]:
        """Record many attempts' ends, as finish() does each, in as few statements as the
        dialect allows; return what finish() would have returned, in order.

        Final outcomes of tasks nobody waits for (the common case) go into batched UPDATEs
        with the same fence; anything else (a retry, a task with dependants, a lost lease)
        takes finish()'s path.
        """
        all_changes = [changes_for(finish, now) for finish in finishes]
        final = [
            FinalRow(lease=finish.lease, changes=changes)
            for finish, changes in zip(finishes, all_changes, strict=True)
            if finish.transition.is_final
        ]
        written: set[UUID] = set()
        for start in range(0, len(final), FINISH_BATCH_SIZE):
            written |= self._finish_final_batch(final[start : start + FINISH_BATCH_SIZE])
        results = [
            changes if finish.lease.task_id in written else self._finish_one(finish, changes)
            for finish, changes in zip(finishes, all_changes, strict=True)
        ]
        self._announce_retries(zip(finishes, results, strict=True))
        return results

    def _announce_retries(self, written: Iterable[tuple[Finish, dict[str, Any] | None]]) -> None:
        """Wake the workers serving retried tasks' queues when the retries fall due, whichever
        is idle then, not only the one that wrote them: once per call, the earliest per queue
        (made_ready_at), not a notification per retry."""
        self.made_ready_at(
            (finish.lease.queue_name, finish.transition.run_after)
            for finish, changes in written
            if changes is not None
            and not finish.transition.is_final
            and finish.transition.run_after is not None
        )

    def _finish_one(self, finish: Finish, changes: dict[str, Any]) -> dict[str, Any] | None:
        lease, transition = finish.lease, finish.transition
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
                cancelled = self.graph.settle(finished)
                if cancelled:
                    transaction.on_commit(
                        partial(self._finished_aside.extend, cancelled), using=using
                    )
        return written

    def take_finished_aside(self) -> list[TaskRecord]:
        """Return, and forget, the tasks this queue's worker-side calls finished without a
        child running them to their end; only committed changes are ever listed."""
        taken, self._finished_aside = self._finished_aside, []
        return taken

    def release(
        self,
        lease: Lease,
        *,
        prior_worker_ids: list[str],
        started: bool = False,
        prior_handed_back: Sequence[StoredHandBack] = (),
    ) -> bool:
        """Hand a task back to the queue (graceful shutdown): the attempt isn't counted.

        An attempt that had `started` is noted in handed_back, after `prior_handed_back`: it
        may have done part of the task, and its number is used again by the next attempt.
        """
        changes: dict[str, Any] = {
            "state": State.READY,
            "attempts": lease.attempt - 1,
            "worker_ids": prior_worker_ids,
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if started:
            note = StoredHandBack(
                attempt=lease.attempt,
                worker_id=lease.worker_id,
                handed_back_at=timezone.now().isoformat(),
            )
            changes["handed_back"] = [*prior_handed_back, note]
        return bool(self._fenced(lease).update(**changes))

    def release_unknown_claims(self, worker_id: str, *, known: Collection[UUID]) -> list[UUID]:
        """Hand back unrun the tasks leased to this worker that it doesn't know it holds;
        return their ids.

        A claim can commit and its answer be lost with the connection (killed between the
        COMMIT and its reply, or, on MySQL, before the claimed rows are read back). The worker
        never ran those tasks, and its heartbeat would renew their leases for ever.
        """
        stray = TaskRecord.objects.using(self.database_alias).filter(
            lease_owner=worker_id, state=State.RUNNING
        )
        return [
            record.id
            for record in stray
            if record.id not in known
            and self.release(
                Lease.of(record), prior_worker_ids=read_worker_ids(record.worker_ids)[0][:-1]
            )
        ]

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
        held = TaskRecord.objects.using(using).filter(lease_owner=worker_id, state=State.RUNNING)
        # Found by a plain read, then renewed by primary key: an UPDATE by owner scans every
        # running row on MariaDB/MySQL (no index leads with the owner) and waits on each one
        # another worker has locked, such as a row a stalled rescuer holds.
        ids = list(held.values_list("id", flat=True))
        if not ids:
            return 0
        return held.filter(id__in=ids).update(
            lease_expires_at=DatabaseNow() + Value(timedelta(seconds=lease_seconds))
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
        # A running row without a lease expiry can only have been written by hand; nobody
        # renews it, so it is rescued like an expired one.
        expired = Q(lease_expires_at__lt=DatabaseNow()) | Q(lease_expires_at__isnull=True)
        candidates = list(
            TaskRecord.objects.using(using)
            .filter(expired, state=State.RUNNING)
            .order_by("lease_expires_at")
            .values_list("id", flat=True)[:limit]
        )
        if not candidates:  # the usual pass: one plain read, no transaction, no lock
            return []
        rescued: list[tuple[UUID, State]] = []
        with transaction.atomic(using=using):
            locked = self._lock_rows(candidates)
            now = read_database_now(using)
            for record in locked:
                # As they stand under the lock: the owner may have renewed the lease meanwhile.
                lease_end = record.lease_expires_at
                if record.state != State.RUNNING or (lease_end is not None and lease_end >= now):
                    continue
                state = self._rescue_one(record)
                if state is not None:
                    rescued.append((record.id, state))
        final = [task_id for task_id, state in rescued if is_finished(state)]
        if final:
            self._finished_aside += TaskRecord.objects.using(using).filter(id__in=final)
        return rescued

    def _lock_rows(self, ids: list[UUID]) -> list[TaskRecord]:
        """Lock the rows of these ids that no one else has locked; return them as they now
        stand, in the order of ids.

        Locked by primary key alone, never through a condition on state or lease: InnoDB's
        locking range scan also locks the first index entry past the range, which on the
        state-led indexes is a live running row. Held for the transaction, that lock stops
        its owner's heartbeat and other workers' heartbeats and rescues behind it, for as
        long as this worker is stalled in the transaction (SIGSTOP, swap, a frozen VM).
        """
        locked = (
            TaskRecord.objects.using(self.database_alias)
            .select_for_update(
                skip_locked=self.connection.features.has_select_for_update_skip_locked
            )
            .filter(id__in=ids)
        )
        position = {task_id: index for index, task_id in enumerate(ids)}
        return sorted(locked, key=lambda record: position[record.id])

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
            attempt=record.attempts,
            options=read_options(record.options)[0],
            outcome=outcome,
            now=timezone.now(),
        )
        errors = read_errors(record.errors)[0]
        if self.finish(lease, transition, prior_errors=errors, now=timezone.now()) is None:
            return None
        logger.warning(
            "rescued task_id=%s worker_id=%s attempt=%s state=%s",
            record.id,
            record.lease_owner,
            record.attempts,
            transition.state,
        )
        return transition.state

    def fail_unknown_states(self, *, limit: int = 100) -> list[UUID]:
        """Fail rows whose state is none of Taskmill's (set by hand or by a migration).

        No claim, rescue or cancel ever takes such a row: it would wait forever, outside every
        state filter of the admin. Failed, it says why and can be retried. Return their ids.
        """
        using = self.database_alias
        candidates = list(
            TaskRecord.objects.using(using)
            .filter(_unknown_state())
            .values_list("id", flat=True)[:limit]
        )
        if not candidates:  # the usual pass: one plain read, no transaction, no lock
            return []
        found: list[TaskRecord] = []
        with transaction.atomic(using=using):
            for record in self._lock_rows(candidates):
                problem = state_problem(record.state)
                if problem is None:  # set right meanwhile
                    continue
                logger.error("unknown state task_id=%s state=%r: failed", record.id, record.state)
                record.errors = read_errors(record.errors)[0]
                self.graph.finish_unstarted(
                    record,
                    State.FAILED,
                    error_entry(InvalidTaskRecord(problem), attempt=record.attempts),
                )
                found.append(record)
        return [record.id for record in found]

    def forget_dead_workers(self, older_than: timedelta) -> int:
        """Delete worker rows silent for longer than older_than; return how many."""
        using = self.database_alias
        dead = Worker.objects.using(using).filter(
            last_heartbeat_at__lt=DatabaseNow() - Value(older_than)
        )
        ids = list(dead.values_list("id", flat=True))
        if not ids:  # the usual pass: one plain read, no lock
            return 0
        # One DELETE, committed as it runs: QuerySet.delete() wraps even a fast delete in a
        # transaction, and a worker stalled inside it (SIGSTOP, swap) kept what its scan had
        # locked (on MariaDB/MySQL also the live worker row past the range), so the next
        # worker's pass waited on it, that worker's whole loop stopped. No row refers to a
        # Worker: there is nothing to cascade.
        return dead.filter(id__in=ids)._raw_delete(using)

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
