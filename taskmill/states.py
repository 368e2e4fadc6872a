"""The task state machine: states, allowed transitions, and the Django status mapping.

Pure: no database access.
"""

from typing import Final

from django.db.models import TextChoices
from django.tasks import TaskResultStatus

from .exceptions import InvalidTaskRecord


class State(TextChoices):
    BLOCKED = "blocked", "Blocked"
    READY = "ready", "Ready"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATES: Final = frozenset({State.BLOCKED, State.READY, State.RUNNING})
FINISHED_STATES: Final = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
# State.values builds a new list on every access, and workers ask for each task they run.
_STATE_VALUES: Final = frozenset(State.values)

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


def state_problem(state: str) -> str | None:
    """Return why state is none of Taskmill's states (a row changed by hand), else None."""
    if state in _STATE_VALUES:
        return None
    return (
        f"state {state!r} is not a Taskmill state ({', '.join(State.values)}); workers fail "
        "such tasks, after which a retry runs them again (admin action or `taskmill retry`)"
    )


def to_django_status(state: State | str) -> TaskResultStatus:
    """Map an internal state onto django.tasks' TaskResultStatus.

    Raise InvalidTaskRecord for a state that isn't Taskmill's.
    """
    problem = state_problem(state)
    if problem is not None:
        raise InvalidTaskRecord(problem)
    # Members hash as their values: a plain string finds its state without State(state).
    return _DJANGO_STATUS[state]  # type: ignore[index]  # a str is a valid key at run time


def can_transition(current: State | str, new: State | str) -> bool:
    """Tell whether the state machine allows going from current to new."""
    return State(new) in TRANSITIONS[State(current)]


def is_finished(state: State | str) -> bool:
    """Tell whether a task in this state will never run again (an unknown state: not yet, as
    workers fail it)."""
    return state in FINISHED_STATES
