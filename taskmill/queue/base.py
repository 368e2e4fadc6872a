"""Queue: the ABC every dialect implements, and the ORM code they share.

Enqueue side: insert records (with de-duplication by unique key and dependency links) and wake
workers. Worker side: claim, finish, release, heartbeat, rescue (added by the worker).
"""

import logging
from abc import ABC
from collections.abc import Iterable, Sequence
from typing import Final
from uuid import UUID

from django.db import IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from ..dependencies import dependency_failed_error, initial_state
from ..models import TaskDependency, TaskRecord
from ..results import StoredError, cancelled_error
from ..states import ACTIVE_STATES, State, is_finished

logger = logging.getLogger(__name__)

# Rows per INSERT statement in enqueue_many: large enough to amortise round trips, small
# enough to stay under SQLite's and MySQL's limits on bound parameters and packet size.
INSERT_BATCH_SIZE: Final = 500
# A duplicate may finish (and free its unique key) between our failed INSERT and our SELECT;
# then inserting again succeeds. Three tries make a livelock practically impossible.
UNIQUE_INSERT_TRIES: Final = 3


class Queue(ABC):  # noqa: B024 - dialects override hooks; the shared ORM code is concrete
    """The queue stored in one database alias."""

    def __init__(self, database_alias: str) -> None:
        self.database_alias = database_alias

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
                self._apply_dependencies(record, ids)
                for record, ids in zip(records, dependencies, strict=False)
            ]
            plain = [record for record in records if record.unique_key is None]
            for start in range(0, len(plain), INSERT_BATCH_SIZE):
                TaskRecord.objects.using(using).bulk_create(plain[start : start + INSERT_BATCH_SIZE])
            stored = {
                id(record): self._insert_unique(record)
                for record in records
                if record.unique_key is not None
            }
            final = [stored.get(id(record), record) for record in records]
            self._link_dependencies(final, records, linked)
            self.notify(
                {
                    record.queue_name
                    for record, original in zip(final, records, strict=True)
                    if record is original and record.state == State.READY
                }
            )
        return final

    def _apply_dependencies(self, record: TaskRecord, ids: Sequence[str]) -> list[TaskRecord]:
        if not ids:
            return []
        # Locking the dependencies orders this enqueue with a worker finishing one of them,
        # so the worker's promotion of blocked dependants can't miss the link made here.
        found = list(
            TaskRecord.objects.using(self.database_alias)
            .select_for_update()
            .filter(id__in=ids)
            .only("id", "state", "task_path")
        )
        missing = sorted(set(ids) - {str(dependency.id) for dependency in found})
        if missing:
            raise TaskResultDoesNotExist(
                f"depends_on names task result(s) that don't exist: {', '.join(missing)}."
            )
        record.state = initial_state(record, found)
        return found

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

    def _link_dependencies(
        self,
        final: Sequence[TaskRecord],
        inserted: Sequence[TaskRecord],
        dependencies: Sequence[Sequence[TaskRecord]],
    ) -> None:
        links = [
            TaskDependency(dependant=record, dependency=dependency)
            for record, original, deps in zip(final, inserted, dependencies, strict=False)
            # A de-duplicated record keeps the dependencies it was first enqueued with.
            if record is original
            for dependency in deps
        ]
        if links:
            TaskDependency.objects.using(self.database_alias).bulk_create(
                links, batch_size=INSERT_BATCH_SIZE
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
            self.finish_unstarted(record, State.CANCELLED, cancelled_error(record.attempts))
            return True

    def finish_unstarted(self, record: TaskRecord, state: State, error: StoredError) -> None:
        """Move a task that isn't running to a final state, then settle its dependants.

        The caller holds the row lock, inside a transaction.
        """
        record.state = state
        record.finished_at = timezone.now()
        record.errors = [*record.errors, error]
        record.unique_key = None
        record.lease_owner = None
        record.lease_expires_at = None
        record.save(
            update_fields=[
                "state", "finished_at", "errors", "unique_key", "lease_owner", "lease_expires_at"
            ]
        )
        self.settle_dependants(record)

    def settle_dependants(self, finished: TaskRecord) -> None:
        """Release or cancel the blocked tasks waiting for a task that just finished."""
        manager = TaskRecord.objects.using(self.database_alias)
        waiting = manager.select_for_update().filter(
            state=State.BLOCKED, dependency_links__dependency_id=finished.id
        )
        if finished.state == State.SUCCEEDED:
            ready = waiting.exclude(
                dependency_links__dependency__state__in=[
                    s for s in State if s != State.SUCCEEDED
                ]
            )
            queue_names = set(ready.values_list("queue_name", flat=True))
            if queue_names:
                manager.filter(
                    id__in=list(ready.values_list("id", flat=True)), state=State.BLOCKED
                ).update(state=State.READY)
                self.notify(queue_names)
            return
        for dependant in list(waiting):
            # Recursion depth is the dependency chain's length, bounded by what users build.
            self.finish_unstarted(
                dependant, State.CANCELLED, dependency_failed_error(finished, dependant.attempts)
            )

    def notify_cancel(self) -> None:
        """Wake workers so they act on a cancel request; polling covers dialects without push."""

    def notify(self, queue_names: Iterable[str]) -> None:
        """Wake workers serving these queues once the current transaction commits.

        Polling finds every task anyway; dialects that can push a wake-up override this.
        """
