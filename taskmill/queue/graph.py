"""The dependency graph's writes: a new task's first state from its dependencies, the links,
and settling dependants (ready, or cancelled) when a task reaches a final state."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Final

from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from ..dependencies import CANCELS_ON_FAILURE, RUNS_ANYWAY, dependency_failed_error, initial_state
from ..models import TaskDependency, TaskRecord
from ..results import StoredError
from ..retention import seconds_to_keep
from ..states import FINISHED_STATES, State
from .lease import Lease

# Rows per INSERT statement in enqueue_many: large enough to amortise round trips, small
# enough to stay under SQLite's and MySQL's limits on bound parameters and packet size.
INSERT_BATCH_SIZE: Final = 500


class DependencyGraph:
    """Dependency bookkeeping for the queue in one database alias."""

    def __init__(
        self,
        database_alias: str,
        made_ready: Callable[[Iterable[tuple[str, datetime]]], None],
    ) -> None:
        self.database_alias = database_alias
        # Announces tasks made ready, as (queue name, run_after) (Inserting.made_ready_at).
        self.made_ready = made_ready

    def lock_dependencies(self, record: TaskRecord, ids: Sequence[str]) -> list[TaskRecord]:
        """Lock a new task's dependencies and set its first state from theirs."""
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

    def link(
        self,
        final: Sequence[TaskRecord],
        inserted: Sequence[TaskRecord],
        dependencies: Sequence[Sequence[TaskRecord]],
    ) -> None:
        """Store the links of the records that were inserted (not de-duplicated)."""
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
            TaskRecord.objects.using(self.database_alias).filter(
                id__in={link.dependency_id for link in links}, has_dependants=False
            ).update(has_dependants=True)

    def finish_unstarted(
        self, record: TaskRecord, state: State, error: StoredError
    ) -> list[TaskRecord]:
        """Move a task that isn't running to a final state, then settle its dependants.

        The caller holds the row lock, inside a transaction. Return every record this moved
        to a final state (the task, then any dependant cancelled in turn), for task_finished.
        """
        record.state = state
        record.finished_at = timezone.now()
        keep = seconds_to_keep(Lease.of(record).result_ttl, state)
        record.expires_at = record.finished_at + timedelta(seconds=keep)
        record.errors = [*record.errors, error]
        record.unique_key = None
        record.lease_owner = None
        record.lease_expires_at = None
        record.save(
            update_fields=[
                "state",
                "finished_at",
                "expires_at",
                "errors",
                "unique_key",
                "lease_owner",
                "lease_expires_at",
            ]
        )
        return [record, *self.settle(record)]

    def settle(self, finished: TaskRecord) -> list[TaskRecord]:
        """Release or cancel the blocked tasks waiting for a task that just finished.

        A dependant with on_dependency_failure="cancel" is cancelled when the task failed or
        was cancelled; one with "run" waits until every dependency has finished. Each step is
        one statement over all dependants, whatever their number of dependencies. Return the
        dependants cancelled (and theirs, in turn).
        """
        manager = TaskRecord.objects.using(self.database_alias)
        # Lock first, in a statement of its own: it waits for a worker finishing another
        # dependency of the same dependants to commit. The statements below start after that
        # wait, so (read committed) they see that dependency's new state. Asked in the locking
        # statement itself, they would see the snapshot from before the wait, and with each of
        # the two workers seeing the other's dependency unfinished, neither would release the
        # dependant.
        locked = list(
            manager.select_for_update()
            .filter(state=State.BLOCKED, dependency_links__dependency_id=finished.id)
            .values_list("id", flat=True)
        )
        if not locked:
            return []
        cancelled: list[TaskRecord] = []
        waiting = manager.filter(id__in=locked, state=State.BLOCKED)
        if finished.state != State.SUCCEEDED:
            for dependant in list(waiting.filter(CANCELS_ON_FAILURE)):
                # Recursion depth is the dependency chain's length, bounded by what users build.
                cancelled += self.finish_unstarted(
                    dependant,
                    State.CANCELLED,
                    dependency_failed_error(finished, dependant.attempts),
                )
        # "run" waits for every dependency to finish, "cancel" for every one to succeed (so
        # only a success can release it).
        unfinished = [s for s in State if s not in FINISHED_STATES]
        ready = list(
            waiting.filter(RUNS_ANYWAY)
            .exclude(dependency_links__dependency__state__in=unfinished)
            .values_list("id", "queue_name", "run_after")
        )
        if finished.state == State.SUCCEEDED:
            not_succeeded = [s for s in State if s != State.SUCCEEDED]
            ready += (
                waiting.filter(CANCELS_ON_FAILURE)
                .exclude(dependency_links__dependency__state__in=not_succeeded)
                .values_list("id", "queue_name", "run_after")
            )
        if ready:
            manager.filter(id__in=[task_id for task_id, *_ in ready], state=State.BLOCKED).update(
                state=State.READY
            )
            self.made_ready((queue_name, run_after) for _, queue_name, run_after in ready)
        return cancelled
