"""Inside a child: resolve the registered task, decode its arguments, run it, return an Outcome.

This is one of the two places the worker catches broadly: every BaseException an attempt
raises becomes an Outcome, so no task can take its worker down.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.tasks import TaskResult, task_backends
from django.tasks.signals import task_finished, task_started

from ..codec import JSON, decode_arguments, encode_return_value
from ..context import STOP, ProgressReport, ProgressThrottle, TaskmillContext
from ..exceptions import Retry, TaskCancelled, TaskNotRegistered
from ..finished_signal import send_robust
from ..models import TaskRecord
from ..outcomes import AttemptError, Outcome, OutcomeKind
from ..results import task_for_record, to_task_result
from ..retry import is_retryable
from ..task import TaskmillTask, resolve_task

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Reporting:
    """Where an attempt's progress reports and captured output go (the pool decides)."""

    send_progress: Callable[[ProgressReport], None]
    capture: Callable[[int], AbstractContextManager[None]]  # log level -> capturing


def fetch_instance(label: str, pk: JSON) -> Model:
    """Fetch a model instance passed by reference, fresh from its database."""
    model = apps.get_model(label)
    instance: Model = model._default_manager.get(pk=pk)
    return instance


def attempt_error(error: BaseException) -> AttemptError:
    kind = type(error)
    return AttemptError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
        traceback="".join(traceback.format_exception(error)),
    )


STOPPED_WHEN_CANCELLED: Final = Outcome(
    kind=OutcomeKind.CANCELLED,
    error=attempt_error(TaskCancelled("cancelled; the task saw it and stopped")),
)


def _failure(error: BaseException, *, retryable: bool, delay: float | None = None) -> Outcome:
    return Outcome(
        kind=OutcomeKind.FAILED, error=attempt_error(error), retryable=retryable, retry_delay=delay
    )


def _delay_for(task: TaskmillTask[..., Any], attempt: int) -> float | None:
    # Only a delay *function* is evaluated here, in user space; numbers are the supervisor's.
    if callable(task.retry_delay):
        return float(task.retry_delay(attempt))
    return None


def transactions_open() -> dict[str, bool]:
    """Which connections are inside a transaction now (the caller's, with the solo pool)."""
    return {conn.alias: conn.in_atomic_block for conn in connections.all(initialized_only=True)}


def release_connections(open_before: dict[str, bool] | None = None) -> None:
    """Drop database connections a task left unusable; keep healthy ones for the next task.

    Not close_old_connections(): with the default CONN_MAX_AGE of 0 it reconnects for every
    task, which costs more than most tasks do. A transaction that was open before the task
    (a test's, around run_until_empty) is the caller's and is left alone.
    """
    open_before = open_before or {}
    for conn in connections.all(initialized_only=True):
        if conn.connection is None or open_before.get(conn.alias):
            continue
        # As between two requests: with CONN_HEALTH_CHECKS, the next task's first query
        # checks the connection first (a database restart then costs no task an error).
        conn.health_check_done = False  # type: ignore[attr-defined]  # Django has it; the stubs lack it
        # A task that left a transaction open must not hand it to the next one.
        if conn.in_atomic_block or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            conn.close()
        elif conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()


def run_attempt(record: TaskRecord, reporting: Reporting) -> Outcome:
    """Run one attempt of a claimed record; never raises."""
    open_before = transactions_open()
    try:
        return _run(record, reporting)
    finally:
        release_connections(open_before)


def _context(
    task: TaskmillTask[..., Any], result: TaskResult[..., Any], throttle: ProgressThrottle
) -> TaskmillContext:
    backend = task_backends[result.backend]
    return TaskmillContext(
        task_result=result,
        database_alias=getattr(backend, "database_alias", DEFAULT_DB_ALIAS),
        throttle=throttle,
        log=logging.getLogger(task.module_path),
    )


def _run(record: TaskRecord, reporting: Reporting) -> Outcome:
    try:
        task = resolve_task(record.task_path)
    except TaskNotRegistered as error:
        return _failure(error, retryable=False)
    try:
        args, kwargs = decode_arguments(record.args, record.kwargs, fetch_instance)
        # The task as enqueued: options given to .using() (retry_on, a delay function) count.
        task = task_for_record(record, task)
        result = to_task_result(record, task=task)
    except Exception as error:
        return _failure(error, retryable=False)
    send_robust(task_started, result)
    STOP.reset()
    throttle = ProgressThrottle(send=reporting.send_progress)
    level = int(record.options.get("log_level", logging.INFO))
    context = _context(task, result, throttle) if task.takes_context else None
    try:
        with reporting.capture(level):
            if context is not None:
                value = task.call(context, *args, **kwargs)
            else:
                value = task.call(*args, **kwargs)
    except Retry as error:
        if context is not None and context.saw_cancel:
            return STOPPED_WHEN_CANCELLED
        return Outcome(kind=OutcomeKind.RETRY, error=attempt_error(error), retry_delay=error.delay)
    except BaseException as error:
        if context is not None and context.saw_cancel:
            return STOPPED_WHEN_CANCELLED
        try:
            delay = _delay_for(task, record.attempts)
        except Exception:
            logger.exception("retry_delay function failed task_id=%s", record.id)
            delay = None
        return _failure(error, retryable=is_retryable(error, task.retry_on), delay=delay)
    finally:
        _flush_progress(throttle, record)
    # A task that saw it was cancelled and returned is cancelled, not a success: what it
    # returned is what it had done so far.
    if context is not None and context.saw_cancel:
        return STOPPED_WHEN_CANCELLED
    try:
        return Outcome(kind=OutcomeKind.SUCCEEDED, return_value=encode_return_value(value))
    except TypeError as error:
        return _failure(error, retryable=False)


def _flush_progress(throttle: ProgressThrottle, record: TaskRecord) -> None:
    # The last report always leaves, and before the outcome; losing it must not cost the
    # outcome.
    try:
        throttle.flush()
    except Exception:
        logger.exception("could not report progress task_id=%s", record.id)


def announce_finished(record: TaskRecord) -> None:
    """Send task_finished for a recorded outcome (record first, notify second)."""
    try:
        result = to_task_result(record)
    except Exception:
        logger.exception("could not describe finished task task_id=%s", record.id)
        return
    open_before = transactions_open()
    try:
        send_robust(task_finished, result)
    finally:
        release_connections(open_before)
