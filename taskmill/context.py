"""TaskmillContext: what a `takes_context=True` task gets — Django's TaskContext plus progress,
a cooperative cancel check, and the task's logger."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from django.tasks import TaskContext
from django.utils import timezone

from .models import TaskRecord
from .output import StoredProgress

# A tight loop may call set_progress freely: at most this often does a report leave the process.
PROGRESS_INTERVAL: Final = 0.25
CANCEL_CHECK_INTERVAL: Final = 0.5

# What set_progress sends and the worker stores on the row: one shape, defined with the reader.
type ProgressReport = StoredProgress


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"set_progress({name}=...) takes a finite number, not {value!r}.")
    if value < 0:
        raise ValueError(f"set_progress({name}={value!r}) must not be negative.")


def progress_report(done: float, total: float | None, message: str) -> ProgressReport:
    """Validate set_progress's arguments and build the JSON stored on the row."""
    _check_number("done", done)
    if total is not None:
        _check_number("total", total)
    if not isinstance(message, str):
        raise TypeError(f"set_progress(message=...) takes a str, not {type(message).__name__}.")
    return StoredProgress(
        done=done, total=total, message=message, updated_at=timezone.now().isoformat()
    )


@dataclass(eq=False)
class StopRequest:
    """Whether the worker asked the attempt running in this process to stop (cancel, timeout,
    shutdown), and whether that attempt checks is_cancelled() and so may stop by itself."""

    requested: bool = False
    cooperative: bool = False

    def reset(self) -> None:
        self.requested = False
        self.cooperative = False


# One attempt runs per process at a time; the child's SIGTERM handler sets it.
STOP: Final = StopRequest()


@dataclass(eq=False)
class ProgressThrottle:
    """Forwards the latest report at most every PROGRESS_INTERVAL; the last one always arrives."""

    send: Callable[[ProgressReport], None]
    interval: float = PROGRESS_INTERVAL
    _latest: ProgressReport | None = None
    _sent_at: float = -math.inf
    _timer: threading.Timer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, value: ProgressReport) -> None:
        with self._lock:
            self._latest = value
            wait = self._sent_at + self.interval - time.monotonic()
            if wait > 0:
                # A report held back must not stay behind for the rest of a long step.
                if self._timer is None:
                    self._timer = threading.Timer(wait, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self.flush()

    def flush(self) -> None:
        with self._lock:
            value, self._latest = self._latest, None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if value is None:
                return
            self._sent_at = time.monotonic()
            self.send(value)


# The stubs declare TaskContext generic and not frozen; Django's class is a frozen dataclass.
@dataclass(frozen=True, slots=True, kw_only=True)
class TaskmillContext(TaskContext):  # type: ignore[misc,type-arg]
    """The context of one attempt. `attempt` (from TaskContext) counts from 1."""

    database_alias: str
    throttle: ProgressThrottle
    log: logging.Logger
    _cancel_seen: dict[str, float | bool] = field(
        default_factory=lambda: {"cancelled": False, "checked_at": -math.inf}
    )

    def set_progress(self, done: float, total: float | None = None, message: str = "") -> None:
        """Record how far the task got; cheap enough to call on every item of a loop."""
        self.throttle.report(progress_report(done, total, message))

    def is_cancelled(self) -> bool:
        """Return True once the task was cancelled (or timed out, or the worker is stopping).

        A task that calls it is trusted to stop by itself: from then on the worker's stop
        signal no longer interrupts it, and it has TASKMILL['CANCEL_GRACE_SECONDS'] to
        return before its process is killed. Its outcome is recorded as cancelled (or timed
        out) whatever it returns. Asks the database at most every half second.
        """
        STOP.cooperative = True
        if STOP.requested or self._cancel_seen["cancelled"]:
            return True
        now = time.monotonic()
        if now - float(self._cancel_seen["checked_at"]) >= CANCEL_CHECK_INTERVAL:
            self._cancel_seen["checked_at"] = now
            self._cancel_seen["cancelled"] = (
                TaskRecord.objects.using(self.database_alias)
                .filter(id=self.task_result.id, cancel_requested_at__isnull=False)
                .exists()
            )
        return bool(self._cancel_seen["cancelled"])

    @property
    def saw_cancel(self) -> bool:
        """Whether is_cancelled() returned True during this attempt."""
        return STOP.cooperative and (STOP.requested or bool(self._cancel_seen["cancelled"]))
