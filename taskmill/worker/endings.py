"""Outcomes the supervisor decides itself, for attempts that ended without the task's say:
a timeout, a cancel, a crash, a row that can't be run."""

import signal
from typing import Final

from ..exceptions import InvalidTaskRecord, TaskCancelled, TaskCrashed
from ..outcomes import AttemptError, Outcome, OutcomeKind


def attempt_error(kind: type[BaseException], message: str) -> AttemptError:
    """An error as a task raising `kind(message)` would have recorded it, without a traceback."""
    return AttemptError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
        traceback=f"{kind.__module__}.{kind.__qualname__}: {message}\n",
    )


CANCELLED_WHILE_RUNNING: Final = Outcome(
    kind=OutcomeKind.CANCELLED, error=attempt_error(TaskCancelled, "cancelled while running")
)
CANCELLED_BEFORE_START: Final = Outcome(
    kind=OutcomeKind.CANCELLED,
    error=attempt_error(TaskCancelled, "cancelled before it started (claimed ahead by its worker)"),
)


def timed_out(limit: object) -> Outcome:
    return Outcome(
        kind=OutcomeKind.TIMED_OUT,
        error=attempt_error(TimeoutError, f"task exceeded its timeout of {limit} s"),
    )


def crashed(exit_code: int) -> Outcome:
    return Outcome(kind=OutcomeKind.CRASHED, error=attempt_error(TaskCrashed, _describe(exit_code)))


def invalid_record(problems: list[str]) -> Outcome:
    message = f"This task's row can't be run as it stands: {'; '.join(problems)}."
    return Outcome(
        kind=OutcomeKind.FAILED, error=attempt_error(InvalidTaskRecord, message), retryable=False
    )


def _describe(exit_code: int) -> str:
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"the task's process was killed by {name}"
    return f"the task's process exited with code {exit_code}"
