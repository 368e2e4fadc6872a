"""How an attempt ended (Outcome) and what the record becomes (next_transition). Pure."""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .codec import JSON
from .retry import DEFAULT_RETRY_DELAY, DEFAULT_RETRY_MAX_DELAY, backoff_delay
from .states import State


class OutcomeKind(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the task raised
    RETRY = "retry"  # the task raised taskmill.Retry
    TIMED_OUT = "timed_out"  # killed after its timeout
    CRASHED = "crashed"  # its process died (segfault, os._exit, out of memory)
    CANCELLED = "cancelled"  # killed on request
    WORKER_LOST = "worker_lost"  # its worker's lease expired


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptError:
    exception_class_path: str
    traceback: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How one attempt ended, as the runner (or the supervisor, for kills) reports it."""

    kind: OutcomeKind
    return_value: JSON = None
    error: AttemptError | None = None
    # Decided in the child, where the task's retry_on classes and delay function live.
    retryable: bool = True
    retry_delay: float | None = None

    def to_json(self) -> dict[str, JSON]:
        return {
            "kind": self.kind.value,
            "return_value": self.return_value,
            "error": None
            if self.error is None
            else {
                "exception_class_path": self.error.exception_class_path,
                "traceback": self.error.traceback,
            },
            "retryable": self.retryable,
            "retry_delay": self.retry_delay,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Outcome":
        error = data.get("error")
        return cls(
            kind=OutcomeKind(data["kind"]),
            return_value=data.get("return_value"),
            error=None if error is None else AttemptError(**error),
            retryable=bool(data.get("retryable", True)),
            retry_delay=data.get("retry_delay"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """What to write on the record for an outcome."""

    state: State
    run_after: datetime | None = None  # set when the task goes back to ready
    return_value: JSON = None
    error: AttemptError | None = None

    @property
    def is_final(self) -> bool:
        return self.state != State.READY


def retry_delay(
    attempt: int, outcome: Outcome, options: dict[str, Any], rng: random.Random | None = None
) -> float:
    """Seconds before the next attempt: the task's own choice first, else the backoff."""
    if outcome.retry_delay is not None:
        return max(0.0, outcome.retry_delay)
    base = options.get("retry_delay")
    return backoff_delay(
        attempt,
        base=base if isinstance(base, int | float) else DEFAULT_RETRY_DELAY,
        cap=float(options.get("retry_max_delay") or DEFAULT_RETRY_MAX_DELAY),
        rng=rng,
    )


def next_transition(
    *,
    attempt: int,
    options: dict[str, Any],
    outcome: Outcome,
    now: datetime,
    rng: random.Random | None = None,
) -> Transition:
    """Decide the record's next state after attempt number `attempt` ended with outcome."""
    if outcome.kind == OutcomeKind.SUCCEEDED:
        return Transition(state=State.SUCCEEDED, return_value=outcome.return_value)
    if outcome.kind == OutcomeKind.CANCELLED:
        return Transition(state=State.CANCELLED, error=outcome.error)
    max_attempts = int(options.get("max_attempts") or 1)
    retryable = outcome.kind == OutcomeKind.RETRY or outcome.retryable
    if retryable and attempt < max_attempts:
        delay = retry_delay(attempt, outcome, options, rng)
        return Transition(
            state=State.READY, run_after=now + timedelta(seconds=delay), error=outcome.error
        )
    return Transition(state=State.FAILED, error=outcome.error)
