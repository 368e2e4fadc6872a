"""What a task's dependencies mean for its state: blocked, ready, or cancelled. No queries."""

from collections.abc import Sequence
from typing import Final

from django.db.models import Q
from django.utils import timezone

from .exceptions import DependencyFailed
from .models import TaskRecord
from .results import StoredError, error_entry
from .states import FINISHED_STATES, State

FAILED_STATES: Final = frozenset({State.FAILED, State.CANCELLED})

# The two policies as row filters, each stated positively: a negated JSON lookup is NULL, not
# true, for rows stored before the option existed, which lack the key and mean "cancel".
RUNS_ANYWAY: Final = Q(options__on_dependency_failure="run")
CANCELS_ON_FAILURE: Final = Q(options__on_dependency_failure="cancel") | Q(
    options__on_dependency_failure__isnull=True
)


def runs_anyway(record: TaskRecord) -> bool:
    """Tell whether record runs once its dependencies finish, even if some of them failed."""
    return bool(record.options.get("on_dependency_failure") == "run")


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
    that finishes later. With on_dependency_failure="run" the task is never cancelled: it
    is ready once every dependency has finished, however it ended.
    """
    if runs_anyway(record):
        finished = all(d.state in FINISHED_STATES for d in dependencies)
        return State.READY if finished else State.BLOCKED
    failed = [d for d in dependencies if d.state in FAILED_STATES]
    if failed:
        record.errors = [*record.errors, dependency_failed_error(failed[0], record.attempts)]
        record.finished_at = timezone.now()
        record.unique_key = None
        return State.CANCELLED
    if all(d.state == State.SUCCEEDED for d in dependencies):
        return State.READY
    return State.BLOCKED
