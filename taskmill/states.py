"""The task state machine: states, allowed transitions, and the Django status mapping.

Pure: no database access.
"""

from typing import Final

from django.db.models import TextChoices
from django.tasks import TaskResultStatus


class State(TextChoices):
    BLOCKED = "blocked", "Blocked"
    READY = "ready", "Ready"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATES: Final = frozenset({State.BLOCKED, State.READY, State.RUNNING})
FINISHED_STATES: Final = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})

TRANSITIONS: Final[dict[State, frozenset[State]]] = {
    State.BLOCKED: frozenset({State.READY, State.CANCELLED}),
    State.READY: frozenset({State.RUNNING, State.CANCELLED}),
    # running -> ready: a retry, or a graceful shutdown handing the task back.
    State.RUNNING: frozenset({State.READY, State.SUCCEEDED, State.FAILED, State.CANCELLED}),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset(),
    State.CANCELLED: frozenset(),
}

_DJANGO_STATUS: Final = {
    State.BLOCKED: TaskResultStatus.READY,
    State.READY: TaskResultStatus.READY,
    State.RUNNING: TaskResultStatus.RUNNING,
    State.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    State.FAILED: TaskResultStatus.FAILED,
    State.CANCELLED: TaskResultStatus.FAILED,
}


def to_django_status(state: State | str) -> TaskResultStatus:
    """Map an internal state onto django.tasks' TaskResultStatus."""
    return _DJANGO_STATUS[State(state)]


def can_transition(current: State | str, new: State | str) -> bool:
    """Tell whether the state machine allows going from current to new."""
    return State(new) in TRANSITIONS[State(current)]


def is_finished(state: State | str) -> bool:
    """Tell whether a task in this state will never run again."""
    return State(state) in FINISHED_STATES
