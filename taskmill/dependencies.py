"""What a task's dependencies mean for its state: blocked, ready, or cancelled. No queries."""

from collections.abc import Sequence

from django.utils import timezone

from .exceptions import DependencyFailed
from .models import TaskRecord
from .results import StoredError, error_entry
from .states import State


def dependency_failed_error(dependency: TaskRecord, attempt: int) -> StoredError:
    """Return the error entry recorded on a dependant cancelled because dependency failed."""
    return error_entry(
        DependencyFailed(
            f"dependency {dependency.id} ({dependency.task_path}) ended {dependency.state}"
        ),
        attempt,
    )


def initial_state(record: TaskRecord, dependencies: Sequence[TaskRecord]) -> State:
    """Return the first state of a task waiting for dependencies, recording a failure on it.

    A dependency that already finished before the dependant was enqueued counts like one
    that finishes later.
    """
    failed = [d for d in dependencies if d.state in (State.FAILED, State.CANCELLED)]
    if failed:
        record.errors = [*record.errors, dependency_failed_error(failed[0], record.attempts)]
        record.finished_at = timezone.now()
        record.unique_key = None
        return State.CANCELLED
    if all(d.state == State.SUCCEEDED for d in dependencies):
        return State.READY
    return State.BLOCKED
